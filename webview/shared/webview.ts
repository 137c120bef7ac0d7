// The webview's end of the IPC (browser side only): wraps acquireVsCodeApi once, sends commands
// and requests through their descriptors, dispatches host notifications, keeps typed state.
import {
  ReadyCommand,
  type CommandType, type NotificationType, type RequestType, type WireMessage,
} from './ipc';

interface VsCodeApi<S> {
  postMessage(message: unknown): void;
  getState(): S | undefined;
  setState(state: S): void;
}
declare function acquireVsCodeApi<S>(): VsCodeApi<S>;

export class WebviewClient<S extends { version: number }> {
  private readonly api: VsCodeApi<S>;
  private readonly listeners = new Map<string, (params: unknown) => void>();
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;

  constructor() {
    // acquireVsCodeApi may be called only once per page: this class is the one place that does.
    this.api = acquireVsCodeApi<S>();
    window.addEventListener('message', (e: MessageEvent) => this.receive(e.data as WireMessage));
  }

  /** Call after registering listeners: tells the host it can send data now. */
  ready(): void {
    this.send(ReadyCommand, {});
  }

  send<P>(type: CommandType<P>, params: P): void {
    this.api.postMessage({ type: 'command', method: type.method, params });
  }

  request<P, R>(type: RequestType<P, R>, params: P): Promise<R> {
    const id = this.nextId++;
    return new Promise<R>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.api.postMessage({ type: 'request', id, method: type.method, params });
    });
  }

  on<P>(type: NotificationType<P>, fn: (params: P) => void): void {
    this.listeners.set(type.method, fn as (params: unknown) => void);
  }

  /** The saved state if it has this version (older shapes are dropped rather than misread). */
  getState(version: S['version']): S | undefined {
    const s = this.api.getState();
    return s && s.version === version ? s : undefined;
  }

  setState(state: S): void {
    this.api.setState(state);
  }

  private receive(msg: WireMessage): void {
    if (!msg || typeof msg !== 'object') return;
    if (msg.type === 'response') {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.error !== undefined) p.reject(new Error(msg.error));
      else p.resolve(msg.result);
    } else if (msg.type === 'notification') {
      this.listeners.get(msg.method)?.(msg.params);
    }
  }
}
