// Types for code-server.cjs (imported by test/e2e/codeServer.ts).

/** The repository root. */
export declare const ROOT: string;
/** code-server's entry point, installed by scripts/install-code-server.sh. */
export declare const CODE_SERVER: string;
/** User settings every test run gets. */
export declare const BASE_SETTINGS: Readonly<Record<string, unknown>>;

export declare function codeServerInstalled(): boolean;
export declare function freePort(): Promise<number>;

export interface StartOptions {
  /** Folder for config.yaml. */
  tmp: string;
  /** The server's working directory (the folder the tests open). */
  workspace: string;
  userData: string;
  extensions: string;
  /** Merged over BASE_SETTINGS into the user settings.json. */
  settings?: Record<string, unknown>;
  /** code-server's --log level; 'info' unless given. */
  logLevel?: string;
  /** Added to the inherited environment. */
  env?: Record<string, string>;
  /** Called with each chunk of the server's output (which is also kept in `log`). */
  onOutput?: (text: string) => void;
}

export interface StartedCodeServer {
  port: number;
  /** http://127.0.0.1:<port>/?folder=<workspace> */
  url: string;
  log: string[];
  stop(): void;
}

export declare function startCodeServer(opts: StartOptions): Promise<StartedCodeServer>;
