// A pickle reader that never executes anything. It interprets the opcodes that build data
// (numbers, strings, bytes, lists, tuples, dicts, sets, the memo) and hands every global to a
// resolver that knows a short list of names (formats/pytorch/torchGlobals.ts: the tensor-rebuild
// functions torch.save writes). A global outside that list, and the opcodes that exist only to
// call or construct arbitrary objects (INST, OBJ, the extension registry, out-of-band buffers),
// stop the read with an error naming them, as torch.load(weights_only=True) does. "Calling" an
// allowed global runs our own TypeScript for it, never anything from the file.
//
// Values: None → null, bool, int → number (bigint past 2^53), float → number, str → string,
// bytes → Uint8Array, list and tuple → array, dict → Map, set → Set.

/** A global the resolver allows: REDUCE/NEWOBJ call it, BUILD gives its result state. */
export interface PyCallable {
  /** `module.name` as written in the pickle. */
  readonly qualname: string;
  call(args: unknown[]): unknown;
}

/** An object that accepts BUILD (the pickle's `__setstate__`). */
export interface PyBuildable {
  setState(state: unknown): void;
}

/** Why a pickle was refused: the global or opcode that is not allowed. */
export class PickleRefused extends Error {
  constructor(readonly what: string, message: string) {
    super(message);
  }
}

export interface UnpickleHooks {
  /** Returns the allowed object for `module.name`, or throws PickleRefused. */
  resolveGlobal(module: string, name: string): unknown;
  /** The object a persistent id stands for (torch: a storage). */
  persistentLoad(pid: unknown): unknown;
}

export function isCallable(v: unknown): v is PyCallable {
  return typeof v === 'object' && v !== null && typeof (v as PyCallable).call === 'function' && typeof (v as PyCallable).qualname === 'string';
}

function describe(v: unknown): string {
  if (typeof v === 'object' && v !== null && typeof (v as { qualname?: unknown }).qualname === 'string') return (v as { qualname: string }).qualname;
  if (v === null) return 'None';
  if (Array.isArray(v)) return 'a list/tuple';
  if (v instanceof Map) return 'a dict';
  return typeof v === 'object' ? (v.constructor?.name ?? 'an object') : typeof v;
}

/** Interprets `data` (one pickle) with `hooks`; returns the unpickled value. */
export function unpickle(data: Uint8Array, hooks: UnpickleHooks): unknown {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const text = new TextDecoder('utf-8');
  let pos = 0;
  let stack: unknown[] = [];
  const marks: unknown[][] = [];
  const memo = new Map<number, unknown>();

  const need = (n: number) => {
    if (pos + n > data.length) throw new PickleRefused('truncated', `the pickle ends in the middle of an opcode (at byte ${pos}).`);
  };
  const u8 = () => { need(1); return data[pos++]; };
  const u16 = () => { need(2); const v = view.getUint16(pos, true); pos += 2; return v; };
  const u32 = () => { need(4); const v = view.getUint32(pos, true); pos += 4; return v; };
  const i32 = () => { need(4); const v = view.getInt32(pos, true); pos += 4; return v; };
  const u64 = () => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new PickleRefused('size', 'the pickle declares an impossible length.');
    return Number(v);
  };
  const bytes = (n: number) => { need(n); const b = data.slice(pos, pos + n); pos += n; return b; };
  const line = () => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) throw new PickleRefused('truncated', 'the pickle ends in the middle of a text opcode.');
    const s = text.decode(data.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = () => {
    if (stack.length === 0) throw new PickleRefused('stack', 'the pickle pops from an empty stack.');
    return stack.pop();
  };
  const top = () => {
    if (stack.length === 0) throw new PickleRefused('stack', 'the pickle reads an empty stack.');
    return stack[stack.length - 1];
  };
  // `stack.push(popMark())` would push onto the array popMark replaces (the receiver is read first).
  const push = (v: unknown) => { stack.push(v); };
  const popMark = () => {
    const items = stack;
    const previous = marks.pop();
    if (!previous) throw new PickleRefused('stack', 'the pickle closes a MARK it never opened.');
    stack = previous;
    return items;
  };
  const memoGet = (i: number) => {
    if (!memo.has(i)) throw new PickleRefused('memo', `the pickle reads memo slot ${i}, which was never written.`);
    return memo.get(i);
  };
  const signedLittleEndian = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const asList = (v: unknown, op: string): unknown[] => {
    if (!Array.isArray(v)) throw new PickleRefused(op, `${op} on ${describe(v)}, which is not a list.`);
    return v;
  };
  const asDict = (v: unknown, op: string): Map<unknown, unknown> => {
    if (!(v instanceof Map)) throw new PickleRefused(op, `${op} on ${describe(v)}, which is not a dict.`);
    return v;
  };
  const call = (fn: unknown, args: unknown, op: string) => {
    if (!isCallable(fn)) throw new PickleRefused(op, `${op} calls ${describe(fn)}, which is not an allowed function.`);
    if (!Array.isArray(args)) throw new PickleRefused(op, `${op} on ${fn.qualname} without an argument tuple.`);
    return fn.call(args);
  };
  const global = (module: string, name: string) => hooks.resolveGlobal(module, name);
  const refuse = (op: string, detail = '') => {
    throw new PickleRefused(op, `the pickle uses the ${op} opcode${detail}, which builds arbitrary objects and is never allowed.`);
  };

  for (;;) {
    const at = pos;
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: u64(); break; // FRAME: framing is transparent to a reader of the whole pickle
      case 0x2e: { // STOP
        const v = pop();
        return v;
      }
      case 0x28: marks.push(stack); stack = []; break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x49: { // INT (text); "00"/"01" are False/True in protocol 0
        const s = line();
        if (s === '00' || s === '01') stack.push(s === '01');
        else stack.push(parseIntText(s, at));
        break;
      }
      case 0x4c: stack.push(parseIntText(line().replace(/L$/, ''), at)); break; // LONG (text)
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: stack.push(signedLittleEndian(bytes(u8()))); break; // LONG1
      case 0x8b: { // LONG4
        const n = i32();
        if (n < 0) throw new PickleRefused('LONG4', 'the pickle declares a negative length.');
        stack.push(signedLittleEndian(bytes(n)));
        break;
      }
      case 0x46: stack.push(Number(line())); break; // FLOAT (text)
      case 0x47: { need(8); stack.push(view.getFloat64(pos, false)); pos += 8; break; } // BINFLOAT (big-endian)
      case 0x53: stack.push(parseQuoted(line(), at)); break; // STRING (protocol 0, a quoted repr)
      case 0x56: stack.push(rawUnicodeEscape(line())); break; // UNICODE (protocol 0)
      case 0x54: stack.push(latin1(bytes(i32()))); break; // BINSTRING (Python 2 str)
      case 0x55: stack.push(latin1(bytes(u8()))); break; // SHORT_BINSTRING
      case 0x58: stack.push(text.decode(bytes(u32()))); break; // BINUNICODE
      case 0x8c: stack.push(text.decode(bytes(u8()))); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(text.decode(bytes(u64()))); break; // BINUNICODE8
      case 0x42: stack.push(bytes(u32())); break; // BINBYTES
      case 0x43: stack.push(bytes(u8())); break; // SHORT_BINBYTES
      case 0x8e: stack.push(bytes(u64())); break; // BINBYTES8
      case 0x96: stack.push(bytes(u64())); break; // BYTEARRAY8
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x74: push(popMark()); break; // TUPLE
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push([a, b]); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push([a, b, c]); break; } // TUPLE3
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x6c: push(popMark()); break; // LIST
      case 0x61: { const v = pop(); asList(top(), 'APPEND').push(v); break; } // APPEND
      case 0x65: { const items = popMark(); asList(top(), 'APPENDS').push(...items); break; } // APPENDS
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x64: { // DICT
        const items = popMark();
        const d = new Map();
        for (let i = 0; i + 1 < items.length; i += 2) d.set(items[i], items[i + 1]);
        stack.push(d);
        break;
      }
      case 0x73: { const v = pop(); const k = pop(); asDict(top(), 'SETITEM').set(k, v); break; } // SETITEM
      case 0x75: { // SETITEMS
        const items = popMark();
        const d = asDict(top(), 'SETITEMS');
        for (let i = 0; i + 1 < items.length; i += 2) d.set(items[i], items[i + 1]);
        break;
      }
      case 0x8f: stack.push(new Set()); break; // EMPTY_SET
      case 0x90: { // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof Set)) throw new PickleRefused('ADDITEMS', `ADDITEMS on ${describe(s)}, which is not a set.`);
        for (const v of items) s.add(v);
        break;
      }
      case 0x91: push(new Set(popMark())); break; // FROZENSET
      case 0x70: memo.set(parseIntText(line(), at) as number, top()); break; // PUT
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x67: stack.push(memoGet(parseIntText(line(), at) as number)); break; // GET
      case 0x68: stack.push(memoGet(u8())); break; // BINGET
      case 0x6a: stack.push(memoGet(u32())); break; // LONG_BINGET
      case 0x63: { // GLOBAL "module\nname\n"
        const module = line();
        stack.push(global(module, line()));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw new PickleRefused('STACK_GLOBAL', 'STACK_GLOBAL without a module and a name.');
        stack.push(global(module, name));
        break;
      }
      case 0x52: { const args = pop(); const fn = pop(); stack.push(call(fn, args, 'REDUCE')); break; } // REDUCE
      case 0x81: { const args = pop(); const cls = pop(); stack.push(call(cls, args, 'NEWOBJ')); break; } // NEWOBJ
      case 0x92: { // NEWOBJ_EX
        const kwargs = pop();
        const args = pop();
        const cls = pop();
        if (kwargs instanceof Map && kwargs.size > 0) throw new PickleRefused('NEWOBJ_EX', `NEWOBJ_EX on ${describe(cls)} with keyword arguments.`);
        stack.push(call(cls, args, 'NEWOBJ_EX'));
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        const target = top();
        if (typeof target !== 'object' || target === null || typeof (target as PyBuildable).setState !== 'function') {
          throw new PickleRefused('BUILD', `BUILD sets the state of ${describe(target)}, which takes none.`);
        }
        (target as PyBuildable).setState(state);
        break;
      }
      case 0x50: stack.push(hooks.persistentLoad(line())); break; // PERSID
      case 0x51: stack.push(hooks.persistentLoad(pop())); break; // BINPERSID
      case 0x69: { // INST "module\nname\n": calls the class; name it
        const module = line();
        const name = line();
        refuse('INST', ` on ${module}.${name}`);
        break;
      }
      case 0x6f: { // OBJ: calls the class under the mark
        const items = popMark();
        refuse('OBJ', items.length ? ` on ${describe(items[0])}` : '');
        break;
      }
      case 0x82: case 0x83: case 0x84: refuse(`EXT${op === 0x82 ? 1 : op === 0x83 ? 2 : 4}`, ' (the copyreg extension registry)'); break;
      case 0x97: case 0x98: refuse(op === 0x97 ? 'NEXT_BUFFER' : 'READONLY_BUFFER', ' (out-of-band buffers)'); break;
      default:
        throw new PickleRefused(`opcode 0x${op.toString(16).padStart(2, '0')}`,
          `the pickle has an unknown opcode 0x${op.toString(16).padStart(2, '0')} at byte ${at}.`);
    }
  }
}

function parseIntText(s: string, at: number): number | bigint {
  if (!/^[+-]?\d+$/.test(s.trim())) throw new PickleRefused('INT', `bad integer '${s}' at byte ${at}.`);
  const v = BigInt(s.trim());
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function latin1(b: Uint8Array): string {
  let s = '';
  for (const c of b) s += String.fromCharCode(c);
  return s;
}

/** A protocol-0 STRING: a quoted Python literal with backslash escapes. */
function parseQuoted(s: string, at: number): string {
  const q = s[0];
  if ((q !== "'" && q !== '"') || s[s.length - 1] !== q || s.length < 2) throw new PickleRefused('STRING', `bad string literal at byte ${at}.`);
  const body = s.slice(1, -1);
  const simple: Record<string, string> = { n: '\n', r: '\r', t: '\t', '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', v: '\v', '0': '\0' };
  return body.replace(/\\(x[0-9a-fA-F]{2}|.)/g, (_, e: string) => (e.startsWith('x') && e.length === 3 ? String.fromCharCode(parseInt(e.slice(1), 16)) : simple[e] ?? `\\${e}`));
}

function rawUnicodeEscape(s: string): string {
  return s.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_, a: string, b: string) => String.fromCodePoint(parseInt(a ?? b, 16)));
}
