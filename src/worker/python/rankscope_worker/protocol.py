"""The worker's side of the NDJSON protocol (src/worker/protocol.ts is the one typed definition).

stdout belongs to the protocol alone: the real stdout file descriptor is duplicated for the
protocol and fd 1 is pointed at stderr, so a stray print (ours, a library's, C code's) can never
corrupt a message; Python-level prints and `logging` records become `log` messages.

Under torchrun only rank 0's channel speaks (`speaks`): the other ranks share its stdin and stdout
but read and write neither; their prints and logs go to stderr, and `send` does nothing."""
import io
import json
import logging
import math
import os
import queue
import sys
import threading


def _clean(value):
    """JSON without NaN/Infinity (not valid JSON): non-finite floats become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class Channel:
    def __init__(self, cancel_on_eof=True, speaks=True):
        self._cancel_on_eof = cancel_on_eof
        self._lock = threading.Lock()
        self.commands = queue.Queue()
        self.cancel = threading.Event()
        self._out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1) if speaks else None
        os.dup2(2, 1)
        if not speaks:
            sys.stdout = sys.stderr
            logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True)
            return
        sys.stdout = _LogStream(self, "info")
        handler = _LogHandler(self)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
        threading.Thread(target=self._read, name="rankscope-stdin", daemon=True).start()

    def send(self, type_, **fields):
        if self._out is None:
            return
        line = json.dumps(_clean({"type": type_, **fields}), separators=(",", ":"))
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()

    def log(self, message, level="info"):
        self.send("log", level=level, message=message)

    def _read(self):
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                self.log(f"ignored a line that is not JSON: {line[:200]}", "warn")
                continue
            if msg.get("type") in ("cancel", "exit"):
                self.cancel.set()
            self.commands.put(msg)
        # stdin closed: the client is gone; stop at the next clean point.
        if self._cancel_on_eof:
            self.cancel.set()
            self.commands.put({"type": "exit"})


class _LogStream(io.TextIOBase):
    def __init__(self, channel, level):
        self._channel, self._level, self._buf = channel, level, ""

    def write(self, s):
        self._buf += s
        while "\n" in self._buf:
            line, self._buf = self._buf.split("\n", 1)
            if line.strip():
                self._channel.log(line, self._level)
        return len(s)

    def flush(self):
        if self._buf.strip():
            self._channel.log(self._buf, self._level)
        self._buf = ""


class _LogHandler(logging.Handler):
    def __init__(self, channel):
        super().__init__()
        self._channel = channel

    def emit(self, record):
        level = "error" if record.levelno >= logging.ERROR else "warn" if record.levelno >= logging.WARNING \
            else "info" if record.levelno >= logging.INFO else "debug"
        self._channel.log(self.format(record), level)
