#!/usr/bin/env bash
# A real VS Code (1.100) for the integration and end-to-end tests on a machine without internet:
# the npm package `code-server`, installed OUTSIDE the project's dependency tree into
# .vscode-test/code-server. Idempotent: a finished install is detected and left alone.
#
# Why not plain `npm install code-server`: its postinstall runs `npm install` in lib/vscode, whose
# @vscode/ripgrep postinstall downloads rg from GitHub (unreachable here). So we install with
# --ignore-scripts, build the native modules ourselves (node-gyp against Node 20's headers;
# kerberos needs libkrb5-dev), put Debian's ripgrep where VS Code looks for it, and redo the
# symlinks postinstall.sh would have made.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="${CODE_SERVER_VERSION:-4.100.3}"
PREFIX="${CODE_SERVER_PREFIX:-$PWD/.vscode-test/code-server}"
CS="$PREFIX/node_modules/code-server"
STAMP="$PREFIX/.installed-$VERSION"

if [ -f "$STAMP" ] && [ -f "$CS/out/node/entry.js" ]; then
  echo "code-server $VERSION already installed at $CS"
  exit 0
fi

node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" != 20 ]; then
  echo "install-code-server: code-server $VERSION needs Node 20 (found $(node -v))." >&2
  exit 1
fi
RG="$(command -v rg || true)"
if [ -z "$RG" ]; then
  echo "install-code-server: ripgrep (rg) not found; install Debian's ripgrep package." >&2
  exit 1
fi

mkdir -p "$PREFIX"
echo "Installing code-server@$VERSION into $PREFIX …"
npm install --ignore-scripts --no-audit --no-fund --no-save --prefix "$PREFIX" "code-server@$VERSION"

# code-server's own native module (password hashing, loaded at start): node-pre-gyp would try a
# GitHub download first; build it from source instead.
(cd "$PREFIX" && npm_config_build_from_source=true npm rebuild argon2)

# VS Code's own dependencies (production only), scripts off for the ripgrep download.
(cd "$CS/lib/vscode" && npm install --ignore-scripts --omit=dev --no-audit --no-fund)

# Native modules the server loads: build them for this Node (node-gyp; headers from nodedir/cache).
# node-pty's postinstall runs `npx node-gyp` (fetched from the npm registry): allow npx to fetch.
(cd "$CS/lib/vscode" && npm_config_yes=true npm rebuild --foreground-scripts \
  @parcel/watcher @vscode/spdlog kerberos native-watchdog node-pty @vscode/deviceid)

# Debian's ripgrep where @vscode/ripgrep's postinstall would have put its download.
mkdir -p "$CS/lib/vscode/node_modules/@vscode/ripgrep/bin"
ln -sf "$RG" "$CS/lib/vscode/node_modules/@vscode/ripgrep/bin/rg"

# What code-server's postinstall.sh does after installing.
(cd "$CS/lib/vscode" \
  && rm -rf node_modules.asar && ln -s node_modules node_modules.asar \
  && (cd bin/remote-cli && ln -sf code-linux.sh code-server) \
  && (cd bin/helpers && ln -sf browser-linux.sh browser.sh))
# Built-in extensions' shared dependency (typescript for the TS/JS language features).
(cd "$CS/lib/vscode/extensions" && npm install --ignore-scripts --omit=dev --no-audit --no-fund \
  && node ./postinstall.mjs >/dev/null)

node "$CS/out/node/entry.js" --version
touch "$STAMP"
echo "code-server $VERSION ready: node $CS/out/node/entry.js"
