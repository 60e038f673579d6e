/**
 * The part of Go's text/template that `docker inspect -f` users type, over
 * JSON values: `{{.A.B}}`, `{{$}}`, variables, pipelines (`{{.X | json}}`),
 * `{{if}}`/`{{with}}`/`{{range}}` with `{{else}}` (and `{{else if}}`),
 * `{{range $k, $v := .Map}}`, `{{- trim -}}`, comments, parentheses, and the
 * functions people use (json, index, len, join, printf, eq, ...). Values print
 * as Go's fmt does (`[a b]`, `map[k:v]`, `<nil>`, `<no value>`).
 *
 * Errors name the bad token and where it is (line:column), as Go's do, and a
 * field that is not there lists the fields that are.
 */

export class TemplateError extends Error {
  override name = 'TemplateError';
}

// ---- lexing ----

type TokKind = 'field' | 'var' | 'dot' | 'str' | 'num' | 'bool' | 'nil' | 'ident' | 'pipe' | 'lparen' | 'rparen' | 'decl' | 'assign' | 'comma';
interface Tok {
  k: TokKind;
  /** the source text */
  text: string;
  pos: number;
  /** field names after it (.A.B, $x.A, ).A) */
  chain: string[];
  value?: unknown;
}

const IDENT = /[A-Za-z_][A-Za-z0-9_]*/y;
const CHAIN = /(?:\.[A-Za-z_][A-Za-z0-9_]*)+/y;
const NUMBER = /[-+]?(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)/y;

function at(re: RegExp, s: string, i: number): string | null {
  re.lastIndex = i;
  const m = re.exec(s);
  return m ? m[0] : null;
}

// ---- the tree ----

interface Cmd {
  args: Tok[];
  /** a parenthesised pipeline in place of an argument, by index in args */
  subs: Map<number, Pipe>;
  pos: number;
}
interface Pipe {
  decl: string[];
  /** '=': assigns existing variables instead of declaring */
  assign: boolean;
  cmds: Cmd[];
  pos: number;
  text: string;
}
interface Block {
  t: 'if' | 'with' | 'range';
  pipe: Pipe;
  list: Node[];
  elseList: Node[];
  pos: number;
}
type Node = { t: 'text'; text: string } | { t: 'action'; pipe: Pipe } | Block;

class Source {
  constructor(readonly src: string) {}

  where(pos: number): string {
    const before = this.src.slice(0, pos);
    const line = before.split('\n').length;
    return `${line}:${pos - (before.lastIndexOf('\n') + 1) + 1}`;
  }

  fail(pos: number, msg: string): never {
    throw new TemplateError(`template: ${this.where(pos)}: ${msg}`);
  }
}

/** The tokens of one action, from just after its `{{` up to its `}}`. */
interface Action {
  toks: Tok[];
  start: number;
  /** index just past the closing delimiter */
  end: number;
  trimAfter: boolean;
}

function lexAction(s: Source, i: number, open: number): Action {
  const src = s.src;
  const toks: Tok[] = [];
  const push = (k: TokKind, text: string, pos: number, value?: unknown) => {
    toks.push({ k, text, pos, chain: [], ...(value !== undefined ? { value } : {}) });
  };
  for (;;) {
    const c = src[i];
    if (c === undefined) s.fail(open, 'unclosed action (no "}}" after "{{")');
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      if (src.startsWith('-}}', i + 1)) return { toks, start: open, end: i + 4, trimAfter: true };
      i++;
      continue;
    }
    if (src.startsWith('}}', i)) return { toks, start: open, end: i + 2, trimAfter: false };
    const start = i;
    if (c === '"') {
      let j = i + 1;
      while (j < src.length && src[j] !== '"' && src[j] !== '\n') j += src[j] === '\\' ? 2 : 1;
      if (src[j] !== '"') s.fail(start, `unterminated quoted string ${src.slice(start, j)}`);
      const text = src.slice(start, j + 1);
      let value: string;
      try {
        value = JSON.parse(text) as string;
      } catch {
        s.fail(start, `bad escape in quoted string ${text}`);
      }
      push('str', text, start, value);
      i = j + 1;
    } else if (c === '`') {
      const j = src.indexOf('`', i + 1);
      if (j < 0) s.fail(start, 'unterminated raw quoted string');
      push('str', src.slice(start, j + 1), start, src.slice(i + 1, j));
      i = j + 1;
    } else if (c === '.') {
      const chain = at(CHAIN, src, i);
      if (chain) {
        const prev = toks[toks.length - 1];
        // `(...).Field`: a field chain right after a closing parenthesis belongs to it.
        if (prev?.k === 'rparen' && prev.pos + 1 === i) prev.chain = chain.slice(1).split('.');
        else toks.push({ k: 'field', text: chain, pos: start, chain: chain.slice(1).split('.') });
        i += chain.length;
      } else if (/[0-9]/.test(src[i + 1] ?? '')) {
        s.fail(start, `bad number syntax "${src.slice(i, i + 4)}"`);
      } else {
        push('dot', '.', start);
        i++;
      }
    } else if (c === '$') {
      const name = '$' + (at(IDENT, src, i + 1) ?? '');
      const chain = at(CHAIN, src, i + name.length) ?? '';
      toks.push({ k: 'var', text: name + chain, pos: start, chain: chain ? chain.slice(1).split('.') : [] });
      i += name.length + chain.length;
    } else if (/[-+0-9]/.test(c)) {
      const n = at(NUMBER, src, i);
      if (!n || /[A-Za-z_.]/.test(src[i + n.length] ?? '')) s.fail(start, `bad number syntax "${src.slice(i).match(/^[^\s})|]*/)![0]}"`);
      push('num', n, start, Number(n));
      i += n.length;
    } else if (c === '|') {
      push('pipe', '|', start);
      i++;
    } else if (c === '(') {
      push('lparen', '(', start);
      i++;
    } else if (c === ')') {
      push('rparen', ')', start);
      i++;
    } else if (c === ',') {
      push('comma', ',', start);
      i++;
    } else if (src.startsWith(':=', i)) {
      push('decl', ':=', start);
      i += 2;
    } else if (c === '=') {
      push('assign', '=', start);
      i++;
    } else {
      const id = at(IDENT, src, i);
      if (!id) s.fail(start, `unexpected "${c}" in action`);
      if (id === 'true' || id === 'false') push('bool', id, start, id === 'true');
      else if (id === 'nil') push('nil', id, start, null);
      else push('ident', id, start);
      i += id.length;
    }
  }
}

class Parser {
  private i = 0;
  /** the last action ended with -}}: the text after it loses its leading space */
  private trimNext = false;

  constructor(private readonly s: Source) {}

  parse(): Node[] {
    const { list, stop } = this.list();
    if (stop) this.s.fail(stop.pos, `unexpected {{${stop.word}}}`);
    return list;
  }

  /** Nodes up to an {{end}} or {{else}} (returned as stop) or the end of the source. */
  private list(): { list: Node[]; stop?: { word: 'end' | 'else'; rest: Tok[]; pos: number } } {
    const src = this.s.src;
    const list: Node[] = [];
    for (;;) {
      let open = src.indexOf('{{', this.i);
      let text = src.slice(this.i, open < 0 ? undefined : open);
      if (this.trimNext) text = text.replace(/^\s+/, '');
      const trimBefore = open >= 0 && src[open + 2] === '-' && /\s/.test(src[open + 3] ?? '');
      if (trimBefore) text = text.replace(/\s+$/, '');
      if (text) list.push({ t: 'text', text });
      if (open < 0) {
        this.i = src.length;
        return { list };
      }
      const body = open + (trimBefore ? 4 : 2);
      if (src.startsWith('/*', body)) {
        const close = src.indexOf('*/', body + 2);
        if (close < 0) this.s.fail(open, 'unclosed comment');
        const after = src.slice(close + 2).match(/^(\s-)?}}/);
        if (!after) this.s.fail(close, 'comment ends before closing delimiter');
        this.i = close + 2 + after[0].length;
        this.trimNext = Boolean(after[1]);
        continue;
      }
      const a = lexAction(this.s, body, open);
      this.i = a.end;
      this.trimNext = a.trimAfter;
      const first = a.toks[0];
      if (!first) this.s.fail(open, 'missing value for command');
      const word = first.k === 'ident' ? first.text : '';
      if (word === 'end' || word === 'else') {
        if (word === 'end' && a.toks.length > 1) this.s.fail(a.toks[1]!.pos, `unexpected "${a.toks[1]!.text}" in end`);
        return { list, stop: { word, rest: a.toks.slice(1), pos: open } };
      }
      if (word === 'if' || word === 'with' || word === 'range') {
        list.push(this.block(word, a.toks.slice(1), open));
      } else if (word === 'define' || word === 'template' || word === 'block' || word === 'break' || word === 'continue') {
        this.s.fail(first.pos, `{{${word}}} is not supported here`);
      } else {
        list.push({ t: 'action', pipe: this.pipe(a.toks, open) });
      }
    }
  }

  private block(word: 'if' | 'with' | 'range', toks: Tok[], pos: number): Node {
    if (!toks.length) this.s.fail(pos, `missing value for ${word}`);
    const pipe = this.pipe(toks, pos, word === 'range');
    const body = this.list();
    if (!body.stop) this.s.fail(pos, `unexpected EOF: {{${word}}} at ${this.s.where(pos)} has no {{end}}`);
    let elseList: Node[] = [];
    if (body.stop.word === 'else') {
      const rest = body.stop.rest;
      if (rest.length) {
        // {{else if ...}} / {{else with ...}}: a nested block that shares this one's {{end}}.
        const w = rest[0]!.k === 'ident' ? rest[0]!.text : '';
        if (w !== 'if' && w !== 'with') this.s.fail(rest[0]!.pos, `unexpected "${rest[0]!.text}" after else`);
        elseList = [this.block(w, rest.slice(1), body.stop.pos)];
      } else {
        const tail = this.list();
        if (!tail.stop) this.s.fail(pos, `unexpected EOF: {{${word}}} at ${this.s.where(pos)} has no {{end}}`);
        if (tail.stop.word === 'else') this.s.fail(tail.stop.pos, `a second {{else}} in {{${word}}}`);
        elseList = tail.list;
      }
    }
    return { t: word, pipe, list: body.list, elseList, pos };
  }

  private pipe(toks: Tok[], pos: number, rangeDecl = false): Pipe {
    const s: Source = this.s;
    const decl: string[] = [];
    let assign = false;
    // $x := ... | $x = ... | (range only) $k, $v := ...
    let k = 0;
    const isVar = (t?: Tok) => t?.k === 'var' && !t.chain.length;
    if (isVar(toks[0]) && (toks[1]?.k === 'decl' || toks[1]?.k === 'assign')) {
      decl.push(toks[0]!.text);
      assign = toks[1]!.k === 'assign';
      k = 2;
    } else if (rangeDecl && isVar(toks[0]) && toks[1]?.k === 'comma') {
      if (!isVar(toks[2])) s.fail((toks[2] ?? toks[1]!).pos, 'range can only declare two variables: $k, $v :=');
      if (toks[3]?.k !== 'decl') s.fail((toks[3] ?? toks[2]!).pos, `expected ":=" after ${toks[0]!.text}, ${toks[2]!.text}`);
      decl.push(toks[0]!.text, toks[2]!.text);
      k = 4;
    }
    const end = toks[toks.length - 1]!;
    const text = s.src.slice(toks[0]!.pos, end.pos + end.text.length + (end.chain.length && end.k === 'rparen' ? end.chain.join('.').length + 1 : 0));
    const { pipe, next } = this.commands(toks, k, pos);
    if (next < toks.length) s.fail(toks[next]!.pos, `unexpected "${toks[next]!.text}" in operand`);
    return { decl, assign, cmds: pipe, pos: toks[k]?.pos ?? pos, text };
  }

  /** Commands separated by '|' from toks[k], up to the end or an unmatched ')'. */
  private commands(toks: Tok[], k: number, pos: number): { pipe: Cmd[]; next: number } {
    const s: Source = this.s;
    const cmds: Cmd[] = [];
    for (;;) {
      const cmd: Cmd = { args: [], subs: new Map(), pos: toks[k]?.pos ?? pos };
      while (k < toks.length && toks[k]!.k !== 'pipe' && toks[k]!.k !== 'rparen') {
        const t = toks[k]!;
        if (t.k === 'decl' || t.k === 'assign' || t.k === 'comma') s.fail(t.pos, `unexpected "${t.text}" in operand`);
        if (t.k === 'ident' && !Object.prototype.hasOwnProperty.call(FUNCS, t.text)) {
          s.fail(t.pos, `function "${t.text}" not defined (there are: ${Object.keys(FUNCS).join(', ')})`);
        }
        if (t.k === 'lparen') {
          const inner = this.commands(toks, k + 1, t.pos);
          const close = toks[inner.next];
          if (!close || close.k !== 'rparen') s.fail(t.pos, 'unclosed left paren');
          cmd.subs.set(cmd.args.length, { decl: [], assign: false, cmds: inner.pipe, pos: t.pos, text: s.src.slice(t.pos, close.pos + 1) });
          cmd.args.push(close);
          k = inner.next + 1;
          continue;
        }
        cmd.args.push(t);
        k++;
      }
      if (!cmd.args.length) s.fail(toks[k]?.pos ?? pos, toks[k] ? `missing value before "${toks[k]!.text}"` : 'missing value for command');
      cmds.push(cmd);
      if (toks[k]?.k !== 'pipe') return { pipe: cmds, next: k };
      k++;
    }
  }
}

// ---- values, as Go's fmt prints them ----

const MISSING = Symbol('no value');
type Value = unknown;

const isMap = (v: Value): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function typeName(v: Value): string {
  if (v === MISSING) return 'no value';
  if (v === null) return 'nil';
  if (Array.isArray(v)) return 'list';
  if (isMap(v)) return 'map';
  return typeof v === 'number' ? 'number' : typeof v;
}

export function formatValue(v: Value): string {
  if (v === MISSING || v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (Array.isArray(v)) return `[${v.map(formatValue).join(' ')}]`;
  if (isMap(v)) return `map[${Object.keys(v).sort().map((k) => `${k}:${formatValue(v[k])}`).join(' ')}]`;
  return String(v);
}

function truth(v: Value): boolean {
  if (v === MISSING || v === null || v === undefined || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isMap(v)) return Object.keys(v).length > 0;
  return true;
}

function printf(fmt: string, args: Value[]): string {
  let n = 0;
  return fmt.replace(/%([-0-9]*)([svdqtx%])/g, (all, width: string, verb: string) => {
    if (verb === '%') return '%';
    if (n >= args.length) return `%!${verb}(MISSING)`;
    const a = args[n++];
    let out = verb === 'q' ? JSON.stringify(typeof a === 'string' ? a : formatValue(a)) : verb === 'x' && typeof a === 'number' ? a.toString(16) : formatValue(a);
    if (verb === 'd' && typeof a !== 'number') out = `%!d(${typeName(a)}=${formatValue(a)})`;
    const w = Number(width.replace('-', '') || 0);
    return width.startsWith('-') ? out.padEnd(w) : out.padStart(w);
  });
}

type Fn = { arity: [number, number]; call: (args: Value[]) => Value };
const anyArgs: [number, number] = [0, Infinity];
const cmp = (f: (a: number | string, b: number | string) => boolean): Fn => ({
  arity: [2, 2],
  call: ([a, b]) => {
    if (typeof a !== typeof b || (typeof a !== 'number' && typeof a !== 'string')) throw new Error(`incompatible types for comparison: ${typeName(a)} and ${typeName(b)}`);
    return f(a as number | string, b as number | string);
  },
});

const FUNCS: Record<string, Fn> = {
  json: { arity: [1, 1], call: ([v]) => JSON.stringify(v === MISSING ? null : v) ?? 'null' },
  index: {
    arity: [1, Infinity],
    call: ([v, ...keys]) => {
      let cur = v;
      for (const key of keys) {
        if (Array.isArray(cur)) {
          if (typeof key !== 'number' || !Number.isInteger(key)) throw new Error(`cannot index a list with ${typeName(key)} ${formatValue(key)}`);
          if (key < 0 || key >= cur.length) throw new Error(`index out of range: ${key} (the list has ${cur.length})`);
          cur = cur[key];
        } else if (isMap(cur)) {
          if (typeof key !== 'string') throw new Error(`cannot index a map with ${typeName(key)} ${formatValue(key)}`);
          cur = Object.prototype.hasOwnProperty.call(cur, key) ? cur[key] : MISSING;
        } else if (typeof cur === 'string' && typeof key === 'number') {
          cur = cur.charCodeAt(key);
        } else throw new Error(`can't index item of type ${typeName(cur)}`);
      }
      return cur;
    },
  },
  len: {
    arity: [1, 1],
    call: ([v]) => {
      if (typeof v === 'string' || Array.isArray(v)) return v.length;
      if (isMap(v)) return Object.keys(v).length;
      throw new Error(`len of type ${typeName(v)}`);
    },
  },
  join: {
    arity: [2, 2],
    call: ([list, sep]) => {
      if (!Array.isArray(list)) throw new Error(`join of type ${typeName(list)}: want a list`);
      return list.map(formatValue).join(String(sep));
    },
  },
  split: { arity: [2, 2], call: ([s, sep]) => String(s).split(String(sep)) },
  upper: { arity: [1, 1], call: ([s]) => formatValue(s).toUpperCase() },
  lower: { arity: [1, 1], call: ([s]) => formatValue(s).toLowerCase() },
  title: { arity: [1, 1], call: ([s]) => formatValue(s).replace(/\b\w/g, (c) => c.toUpperCase()) },
  truncate: { arity: [2, 2], call: ([s, n]) => [...formatValue(s)].slice(0, Number(n)).join('') },
  print: { arity: anyArgs, call: (a) => a.map((v, i) => (i && typeof v !== 'string' && typeof a[i - 1] !== 'string' ? ' ' : '') + formatValue(v)).join('') },
  println: { arity: anyArgs, call: (a) => a.map(formatValue).join(' ') + '\n' },
  printf: {
    arity: [1, Infinity],
    call: ([f, ...a]) => {
      if (typeof f !== 'string') throw new Error(`printf's format is ${typeName(f)}, not a string`);
      return printf(f, a);
    },
  },
  not: { arity: [1, 1], call: ([v]) => !truth(v) },
  and: { arity: [1, Infinity], call: (a) => a.find((v) => !truth(v)) ?? a[a.length - 1] },
  or: { arity: [1, Infinity], call: (a) => a.find((v) => truth(v)) ?? a[a.length - 1] },
  eq: {
    arity: [2, Infinity],
    call: ([a, ...bs]) => {
      if (typeof a === 'object' && a !== null) throw new Error(`eq of a ${typeName(a)}: only strings, numbers, booleans and nil compare`);
      return bs.some((b) => b === a);
    },
  },
  ne: { arity: [2, 2], call: ([a, b]) => a !== b },
  lt: cmp((a, b) => a < b),
  le: cmp((a, b) => a <= b),
  gt: cmp((a, b) => a > b),
  ge: cmp((a, b) => a >= b),
};

// ---- execution ----

interface Scope {
  dot: Value;
  vars: [string, Value][];
}

class Exec {
  out = '';

  constructor(private readonly s: Source) {}

  private fail(pos: number, text: string, msg: string): never {
    throw new TemplateError(`template: ${this.s.where(pos)}: executing at <${text}>: ${msg}`);
  }

  run(list: Node[], sc: Scope): void {
    for (const n of list) {
      if (n.t === 'text') this.out += n.text;
      else if (n.t === 'action') {
        const v = this.pipe(n.pipe, sc);
        if (!n.pipe.decl.length) this.out += formatValue(v);
      } else if (n.t === 'if' || n.t === 'with') {
        const mark = sc.vars.length;
        const v = this.pipe(n.pipe, sc);
        if (truth(v)) this.run(n.list, n.t === 'with' ? { dot: v, vars: sc.vars } : sc);
        else this.run(n.elseList, sc);
        sc.vars.length = mark;
      } else this.range(n, sc);
    }
  }

  private range(n: Block, sc: Scope): void {
    const mark = sc.vars.length;
    const decl = n.pipe.decl;
    const v = this.pipe({ ...n.pipe, decl: [] }, sc);
    let items: [Value, Value][];
    if (Array.isArray(v)) items = v.map((x, i) => [i, x]);
    else if (isMap(v)) items = Object.keys(v).sort().map((k) => [k, v[k]]);
    else if (v === null || v === MISSING) items = [];
    else this.fail(n.pipe.pos, n.pipe.text, `range can't iterate over ${typeName(v)} ${formatValue(v)}`);
    if (!items.length) this.run(n.elseList, sc);
    for (const [k, x] of items) {
      sc.vars.length = mark;
      if (decl.length === 1) sc.vars.push([decl[0]!, x]);
      if (decl.length === 2) sc.vars.push([decl[0]!, k], [decl[1]!, x]);
      this.run(n.list, { dot: x, vars: sc.vars });
    }
    sc.vars.length = mark;
  }

  private pipe(p: Pipe, sc: Scope): Value {
    let v: Value = MISSING;
    p.cmds.forEach((c, i) => (v = this.cmd(c, sc, i ? [v] : [])));
    if (p.decl.length) {
      const name = p.decl[0]!;
      if (p.assign) {
        const slot = [...sc.vars].reverse().find(([n]) => n === name);
        if (!slot) this.fail(p.pos, p.text, `undefined variable: ${name}`);
        slot[1] = v;
      } else sc.vars.push([name, v]);
    }
    return v;
  }

  private cmd(c: Cmd, sc: Scope, piped: Value[]): Value {
    const head = c.args[0]!;
    if (head.k === 'ident') {
      const fn = FUNCS[head.text]!;
      const args = [...c.args.slice(1).map((t, i) => this.arg(t, c.subs.get(i + 1), sc)), ...piped];
      if (args.length < fn.arity[0] || args.length > fn.arity[1]) {
        const want = fn.arity[0] === fn.arity[1] ? `${fn.arity[0]}` : fn.arity[1] === Infinity ? `at least ${fn.arity[0]}` : `${fn.arity[0]} to ${fn.arity[1]}`;
        this.fail(head.pos, head.text, `wrong number of args for ${head.text}: want ${want} got ${args.length}`);
      }
      try {
        return fn.call(args);
      } catch (e) {
        this.fail(head.pos, head.text, `error calling ${head.text}: ${(e as Error).message}`);
      }
    }
    if (c.args.length > 1 || piped.length) {
      const extra = c.args[1] ?? head;
      this.fail(extra.pos, head.text, `can't give argument to non-function ${head.k === 'rparen' ? '(...)' : head.text}`);
    }
    return this.arg(head, c.subs.get(0), sc);
  }

  private arg(t: Tok, sub: Pipe | undefined, sc: Scope): Value {
    switch (t.k) {
      case 'dot':
        return sc.dot;
      case 'field':
        return this.chain(sc.dot, t.chain, t, '');
      case 'var': {
        const name = t.text.split('.')[0]!;
        const slot = [...sc.vars].reverse().find(([n]) => n === name);
        if (!slot) this.fail(t.pos, t.text, `undefined variable: ${name}`);
        return this.chain(slot[1], t.chain, t, name);
      }
      case 'rparen':
        return this.chain(this.pipe(sub!, sc), t.chain, { ...t, text: sub!.text + (t.chain.length ? '.' + t.chain.join('.') : '') }, sub!.text);
      case 'ident':
        // A function in argument position runs with no arguments (`{{len (index . 0) | printf "%d"}}` aside).
        return this.cmd({ args: [t], subs: new Map(), pos: t.pos }, sc, []);
      case 'str':
      case 'num':
      case 'bool':
      case 'nil':
        return t.value;
      default:
        this.fail(t.pos, t.text, `unexpected "${t.text}"`);
    }
  }

  private chain(v: Value, names: string[], t: Tok, base: string): Value {
    let path = base;
    for (const name of names) {
      const here = path || '.';
      if (v === null || v === MISSING) this.fail(t.pos, t.text, `${here} is ${v === null ? 'null' : 'missing'}: it has no field "${name}"`);
      if (!isMap(v)) this.fail(t.pos, t.text, `can't evaluate field ${name} in ${typeName(v)} ${here}`);
      if (!Object.prototype.hasOwnProperty.call(v, name)) {
        const has = Object.keys(v);
        this.fail(t.pos, t.text, `no field "${name}" in ${here}${has.length ? ` (it has: ${has.join(', ')})` : ' (it is empty)'}`);
      }
      v = v[name];
      path += '.' + name;
    }
    return v;
  }
}

export interface Template {
  readonly source: string;
  execute(data: unknown): string;
}

/** Parses @source; a syntax error throws a TemplateError naming the token and its line:column. */
export function compile(source: string): Template {
  const s = new Source(source);
  const tree = new Parser(s).parse();
  return {
    source,
    execute(data: unknown): string {
      const x = new Exec(s);
      x.run(tree, { dot: data, vars: [['$', data]] });
      return x.out;
    },
  };
}

export function render(source: string, data: unknown): string {
  return compile(source).execute(data);
}
