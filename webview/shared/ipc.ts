// Typed messages between a webview and the extension host, GitLens style: every message is
// declared once as a descriptor (command, request with reply, notification) in the view's
// protocol.ts, and both sides send/receive through the descriptor, never a bare string.
//
// Direction and trust: commands and requests go webview → host and are VALIDATED by the host
// (the webview renders untrusted model files, so its messages are untrusted input);
// notifications go host → webview. This file imports neither 'vscode' nor the DOM, so the
// extension host (src/extension) and the browser bundles both use it.

// ---------- runtime checks ----------

/** A runtime check: returns the value typed as T or throws IpcValidationError naming the path. */
export type Check<T> = (value: unknown, path: string) => T;
export type Infer<C> = C extends Check<infer T> ? T : never;

export class IpcValidationError extends Error {
  constructor(readonly path: string, expected: string, got: unknown) {
    super(`${path}: expected ${expected}, got ${describe(got)}`);
    this.name = 'IpcValidationError';
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'string') return `string(${v.length})`;
  return typeof v === 'number' ? `number ${v}` : typeof v;
}

export const is = {
  string(opts: { max?: number } = {}): Check<string> {
    const max = opts.max ?? 4096;
    return (v, p) => {
      if (typeof v !== 'string' || v.length > max) throw new IpcValidationError(p, `string ≤ ${max} chars`, v);
      return v;
    };
  },
  number(opts: { min?: number; max?: number; integer?: boolean } = {}): Check<number> {
    return (v, p) => {
      const ok = typeof v === 'number' && Number.isFinite(v)
        && (opts.integer !== true || Number.isInteger(v))
        && (opts.min === undefined || v >= opts.min)
        && (opts.max === undefined || v <= opts.max);
      if (!ok) throw new IpcValidationError(p, `${opts.integer ? 'integer' : 'number'} in [${opts.min ?? '-∞'}, ${opts.max ?? '∞'}]`, v);
      return v as number;
    };
  },
  boolean(): Check<boolean> {
    return (v, p) => {
      if (typeof v !== 'boolean') throw new IpcValidationError(p, 'boolean', v);
      return v;
    };
  },
  oneOf<const L extends readonly (string | number)[]>(...values: L): Check<L[number]> {
    return (v, p) => {
      if (!values.includes(v as L[number])) throw new IpcValidationError(p, `one of ${values.join('|')}`, v);
      return v as L[number];
    };
  },
  array<T>(item: Check<T>, opts: { max?: number } = {}): Check<T[]> {
    const max = opts.max ?? 100_000;
    return (v, p) => {
      if (!Array.isArray(v) || v.length > max) throw new IpcValidationError(p, `array ≤ ${max} items`, v);
      return v.map((x, i) => item(x, `${p}[${i}]`));
    };
  },
  /** An object with exactly these keys checked; unknown keys are dropped, not passed on. */
  object<S extends Record<string, Check<unknown>>>(shape: S): Check<{ [K in keyof S]: Infer<S[K]> }> {
    return (v, p) => {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new IpcValidationError(p, 'object', v);
      const out: Record<string, unknown> = {};
      for (const [k, check] of Object.entries(shape)) {
        const value = check((v as Record<string, unknown>)[k], `${p}.${k}`);
        if (value !== undefined) out[k] = value;
      }
      return out as { [K in keyof S]: Infer<S[K]> };
    };
  },
  optional<T>(check: Check<T>): Check<T | undefined> {
    return (v, p) => (v === undefined ? undefined : check(v, p));
  },
};

/** Params of messages that carry none. */
export const noParams: Check<Record<string, never>> = (v, p) => {
  if (v !== undefined && (typeof v !== 'object' || v === null)) throw new IpcValidationError(p, 'no params', v);
  return {};
};

// ---------- message descriptors ----------

declare const phantom: unique symbol;

/** Webview → host, no reply. */
export interface CommandType<P> { readonly kind: 'command'; readonly method: string; readonly params: Check<P> }
/** Webview → host, the host replies with R (or an error message). */
export interface RequestType<P, R> {
  readonly kind: 'request'; readonly method: string; readonly params: Check<P>;
  readonly [phantom]?: R;
}
/** Host → webview. */
export interface NotificationType<P> { readonly kind: 'notification'; readonly method: string; readonly [phantom]?: P }

export type ParamsOf<T> = T extends CommandType<infer P> ? P : T extends RequestType<infer P, unknown> ? P
  : T extends NotificationType<infer P> ? P : never;
export type ResultOf<T> = T extends RequestType<unknown, infer R> ? R : never;

export function command<P>(scope: string, method: string, params: Check<P>): CommandType<P> {
  return { kind: 'command', method: `${scope}/${method}`, params };
}
export function request<P, R>(scope: string, method: string, params: Check<P>): RequestType<P, R> {
  return { kind: 'request', method: `${scope}/${method}`, params };
}
export function notification<P>(scope: string, method: string): NotificationType<P> {
  return { kind: 'notification', method: `${scope}/${method}` };
}

/** Sent by every view once its script runs: the host then sends the data (earlier posts may be lost). */
export const ReadyCommand = command('webview', 'ready', noParams);

// ---------- wire format ----------

export type WireMessage =
  | { type: 'command'; method: string; params: unknown }
  | { type: 'request'; id: number; method: string; params: unknown }
  | { type: 'response'; id: number; result?: unknown; error?: string }
  | { type: 'notification'; method: string; params: unknown };

/** Checks the envelope of a message from the webview; params are checked by the descriptor. */
export const wireFromWebview: Check<
  { type: 'command'; method: string; params: unknown } | { type: 'request'; id: number; method: string; params: unknown }
> = (v, p) => {
  const env = is.object({
    type: is.oneOf('command', 'request'),
    method: is.string({ max: 200 }),
    id: is.optional(is.number({ integer: true, min: 0 })),
  })(v, p);
  const params = (v as { params?: unknown }).params;
  if (env.type === 'request') {
    if (env.id === undefined) throw new IpcValidationError(`${p}.id`, 'request id', undefined);
    return { type: 'request', id: env.id, method: env.method, params };
  }
  return { type: 'command', method: env.method, params };
};

// ---------- host side ----------

type Handler = (params: unknown, signal: AbortSignal) => unknown;

/**
 * The extension host's end of one webview: register handlers per descriptor, feed it every raw
 * message (`webview.onDidReceiveMessage(m => host.receive(m))`), send notifications.
 * Invalid or unknown messages are dropped and reported through `onInvalid` (log them).
 */
export class HostEndpoint {
  private readonly handlers = new Map<string, { kind: 'command' | 'request'; check: Check<unknown>; fn: Handler }>();
  private readonly inflight = new AbortController();

  constructor(
    private readonly post: (message: WireMessage) => unknown,
    private readonly onInvalid: (error: Error, raw: unknown) => void = () => {},
  ) {}

  onCommand<P>(type: CommandType<P>, fn: (params: P) => void | Promise<void>): this {
    this.handlers.set(type.method, { kind: 'command', check: type.params, fn: (p) => fn(p as P) });
    return this;
  }

  /** The handler's resolved value is the reply; a thrown error's message is sent back as the error. */
  onRequest<P, R>(type: RequestType<P, R>, fn: (params: P, signal: AbortSignal) => R | Promise<R>): this {
    this.handlers.set(type.method, { kind: 'request', check: type.params, fn: (p, s) => fn(p as P, s) });
    return this;
  }

  notify<P>(type: NotificationType<P>, params: P): void {
    this.post({ type: 'notification', method: type.method, params });
  }

  /** Handles one raw message; resolves when its handler finished (never rejects). */
  async receive(raw: unknown): Promise<void> {
    let msg: ReturnType<typeof wireFromWebview>;
    let params: unknown;
    let entry: { kind: 'command' | 'request'; check: Check<unknown>; fn: Handler } | undefined;
    try {
      msg = wireFromWebview(raw, 'message');
      entry = this.handlers.get(msg.method);
      if (!entry || entry.kind !== msg.type) throw new Error(`unknown ${msg.type} '${msg.method.slice(0, 80)}'`);
      params = entry.check(msg.params, `${msg.method}.params`);
    } catch (e) {
      this.onInvalid(e as Error, raw);
      const id = (raw as { id?: unknown } | null)?.id;
      if ((raw as { type?: unknown } | null)?.type === 'request' && typeof id === 'number') {
        this.post({ type: 'response', id, error: `Invalid request: ${(e as Error).message}` });
      }
      return;
    }
    try {
      const result = await entry.fn(params, this.inflight.signal);
      if (msg.type === 'request') this.post({ type: 'response', id: msg.id, result });
    } catch (e) {
      if (msg.type === 'request') this.post({ type: 'response', id: msg.id, error: (e as Error)?.message ?? String(e) });
      else this.onInvalid(e as Error, raw);
    }
  }

  /** Aborts the signal handed to running requests (call when the webview is disposed). */
  dispose(): void {
    this.inflight.abort();
  }
}
