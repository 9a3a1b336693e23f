/**
 * Go RE2 regular expressions (NPD's rule patterns) as JavaScript RegExps. The pattern is read
 * token by token and written out again for the `v` flag, so every construct means what it means
 * in Go: `\s` `\d` `\w` are ASCII as in RE2, `.` does not match `\n` only (JS also stops at `\r`),
 * `(?m)` `(?s)` `(?U)` become anchors, classes and greediness of our own. What RE2 lacks
 * (backreferences, lookaround) and what JavaScript lacks (`\C`) are refused with the reason,
 * as Go's regexp.Compile would refuse them. Pure: no I/O, used in the config child.
 */

export interface TranslatedPattern {
  /** JavaScript source for `new RegExp(source, flags)`. */
  source: string;
  flags: string;
  /**
   * The pattern can only match within one line (no `\n`, no start anchor, no top-level `|`):
   * matching the last buffered line is then the same as matching the whole buffer (NPD's
   * lastLineOnly), and cheaper.
   */
  lastLineOnly: boolean;
}

export class Re2Error extends Error {
  override name = 'Re2Error';
}

interface Flags {
  i: boolean;
  m: boolean;
  s: boolean;
  U: boolean;
}

/** RE2 refuses repeat counts above 1000. */
const maxRepeat = 1000;

const perlClasses: Record<string, Array<[number, number]>> = {
  d: [[0x30, 0x39]],
  s: [
    [0x09, 0x0a],
    [0x0c, 0x0d],
    [0x20, 0x20],
  ],
  w: [
    [0x30, 0x39],
    [0x41, 0x5a],
    [0x5f, 0x5f],
    [0x61, 0x7a],
  ],
};

const posixClasses: Record<string, Array<[number, number]>> = {
  alnum: [
    [0x30, 0x39],
    [0x41, 0x5a],
    [0x61, 0x7a],
  ],
  alpha: [
    [0x41, 0x5a],
    [0x61, 0x7a],
  ],
  ascii: [[0x00, 0x7f]],
  blank: [
    [0x09, 0x09],
    [0x20, 0x20],
  ],
  cntrl: [
    [0x00, 0x1f],
    [0x7f, 0x7f],
  ],
  digit: [[0x30, 0x39]],
  graph: [[0x21, 0x7e]],
  lower: [[0x61, 0x7a]],
  print: [[0x20, 0x7e]],
  punct: [
    [0x21, 0x2f],
    [0x3a, 0x40],
    [0x5b, 0x60],
    [0x7b, 0x7e],
  ],
  space: [
    [0x09, 0x0d],
    [0x20, 0x20],
  ],
  upper: [[0x41, 0x5a]],
  word: perlClasses.w as Array<[number, number]>,
  xdigit: [
    [0x30, 0x39],
    [0x41, 0x46],
    [0x61, 0x66],
  ],
};

const hex = (cp: number) => `\\u{${cp.toString(16)}}`;
const rangeText = ([lo, hi]: [number, number]) => (lo === hi ? hex(lo) : `${hex(lo)}-${hex(hi)}`);
const covers = (ranges: Array<[number, number]>, cp: number) => ranges.some(([lo, hi]) => lo <= cp && cp <= hi);
const newline = 0x0a;

/** One item of a class, as a `v`-mode class operand, and whether it can match `\n`. */
interface ClassPart {
  text: string;
  newline: boolean;
}

function ranges(list: Array<[number, number]>, negated: boolean): ClassPart {
  const body = list.map(rangeText).join('');
  return { text: negated ? `[^${body}]` : `[${body}]`, newline: negated !== covers(list, newline) };
}

function unicodeClass(name: string, negated: boolean): ClassPart {
  let inner = name;
  let neg = negated;
  if (inner.startsWith('^')) {
    inner = inner.slice(1);
    neg = !neg;
  }
  const property = inner === 'Any' ? 'Any' : /^[A-Z][a-z]?$/.test(inner) ? inner : `Script=${inner}`;
  const text = `\\${neg ? 'P' : 'p'}{${property}}`;
  try {
    new RegExp(text, 'v');
  } catch {
    throw new Re2Error(`\\p{${name}}: not a Unicode category or script RE2 knows (e.g. \\pL, \\p{Greek})`);
  }
  // \n is in no letter, number or script class; a negated one (or Any, or Cc) holds it.
  return { text, newline: neg || inner === 'Any' || inner === 'C' || inner === 'Cc' };
}

class Translator {
  private pos = 0;
  private out = '';
  private multiLine = false;
  private flags: Flags = { i: false, m: false, s: false, U: false };
  private readonly flagStack: Flags[] = [];
  /** `(?i:` wrappers opened by an inline `(?i)` in the current group: closed with it, and around each `|`. */
  private modifiers: string[] = [];
  private readonly modifierStack: string[][] = [];
  /** Whether the last thing written can take a quantifier. */
  private atom = false;
  private topLevelAlternation = false;
  private startAnchor = false;

  constructor(private readonly src: string) {}

  translate(): TranslatedPattern {
    const leading = this.leadingFlags();
    while (this.pos < this.src.length) this.token();
    if (this.flagStack.length > 0) throw new Re2Error('missing closing ): a group is opened and never closed');
    this.out += ')'.repeat(this.modifiers.length);
    return {
      source: this.out,
      flags: leading.i ? 'iv' : 'v',
      lastLineOnly: !this.multiLine && !this.topLevelAlternation && !this.startAnchor,
    };
  }

  /** A `(?i)` at the very start applies to everything: the JS `i` flag, as Go's whole-pattern flag. */
  private leadingFlags(): Flags {
    const match = /^\(\?([imsU]+)\)/.exec(this.src);
    if (!match) return this.flags;
    // `i` is carried by the JS flag; m, s and U by the translation itself.
    for (const f of match[1] as string) this.flags[f as keyof Flags] = true;
    this.pos = match[0].length;
    return { ...this.flags };
  }

  private fail(what: string): never {
    throw new Re2Error(`${what} (at offset ${this.pos} of ${JSON.stringify(this.src)})`);
  }

  private token(): void {
    const c = this.src[this.pos] as string;
    switch (c) {
      case '\\':
        return this.escape();
      case '[':
        return this.charClass();
      case '(':
        return this.openGroup();
      case ')':
        return this.closeGroup();
      case '|':
        this.pos += 1;
        if (this.flagStack.length === 0) this.topLevelAlternation = true;
        // An inline flag holds to the end of its group across `|`, but binds no tighter than it.
        this.emit(`${')'.repeat(this.modifiers.length)}|${this.modifiers.join('')}`, false);
        return;
      case '*':
      case '+':
      case '?':
        return this.quantifier(c);
      case '{':
        if (this.repeatAhead()) return this.quantifier('{');
        this.pos += 1;
        return this.literal(c.codePointAt(0) as number);
      case '.':
        this.pos += 1;
        if (this.flags.s) this.multiLine = true;
        this.emit(this.flags.s ? '[^]' : '[^\\n]', true);
        return;
      case '^':
        this.pos += 1;
        this.startAnchor = true;
        if (this.flags.m) this.multiLine = true;
        this.emit(this.flags.m ? '(?<![^\\n])' : '^', false);
        return;
      case '$':
        this.pos += 1;
        if (this.flags.m) this.multiLine = true;
        this.emit(this.flags.m ? '(?![^\\n])' : '$', false);
        return;
      default: {
        const cp = this.src.codePointAt(this.pos) as number;
        this.pos += cp > 0xffff ? 2 : 1;
        this.literal(cp);
      }
    }
  }

  private emit(text: string, atom: boolean): void {
    this.out += text;
    this.atom = atom;
  }

  private literal(cp: number): void {
    if (cp === newline) this.multiLine = true;
    const plain = (cp >= 0x30 && cp <= 0x39) || (cp >= 0x41 && cp <= 0x5a) || (cp >= 0x61 && cp <= 0x7a) || cp > 0x7f;
    this.emit(plain ? String.fromCodePoint(cp) : hex(cp), true);
  }

  private part(part: ClassPart): void {
    if (part.newline) this.multiLine = true;
    this.emit(part.text, true);
  }

  /** An escape outside a class. */
  private escape(): void {
    const e = this.src[this.pos + 1];
    if (e === undefined) this.fail('trailing backslash at end of expression');
    if (e === 'Q') {
      const end = this.src.indexOf('\\E', this.pos + 2);
      const text = this.src.slice(this.pos + 2, end < 0 ? undefined : end);
      this.pos = end < 0 ? this.src.length : end + 2;
      for (const ch of text) this.literal(ch.codePointAt(0) as number);
      return;
    }
    switch (e) {
      case 'A':
        this.pos += 2;
        this.startAnchor = true;
        this.emit('^', false);
        return;
      case 'z':
        this.pos += 2;
        this.emit('$', false);
        return;
      case 'b':
      case 'B':
        this.pos += 2;
        this.emit(`\\${e}`, false);
        return;
    }
    this.part(this.classEscape(false));
  }

  /**
   * An escape that stands for characters (inside or outside a class): a literal, a Perl or
   * Unicode class. Anything Go's parser refuses is refused here, with what to write instead.
   */
  private classEscape(inClass: boolean): ClassPart {
    const e = this.src[this.pos + 1] as string;
    const start = this.pos;
    this.pos += 2;
    const lower = e.toLowerCase();
    if (lower in perlClasses) return ranges(perlClasses[lower] as Array<[number, number]>, e !== lower);
    if (e === 'p' || e === 'P') {
      let name: string;
      if (this.src[this.pos] === '{') {
        const end = this.src.indexOf('}', this.pos);
        if (end < 0) this.fail('\\p{ without a closing }');
        name = this.src.slice(this.pos + 1, end);
        this.pos = end + 1;
      } else {
        name = this.src[this.pos] ?? '';
        this.pos += 1;
      }
      return unicodeClass(name, e === 'P');
    }
    const single: Record<string, number> = { a: 0x07, f: 0x0c, t: 0x09, n: 0x0a, r: 0x0d, v: 0x0b };
    if (e in single) return this.literalPart(single[e] as number);
    if (e === 'x') {
      let digits: string;
      if (this.src[this.pos] === '{') {
        const end = this.src.indexOf('}', this.pos);
        digits = end < 0 ? '' : this.src.slice(this.pos + 1, end);
        this.pos = end + 1;
      } else {
        digits = this.src.slice(this.pos, this.pos + 2);
        this.pos += 2;
      }
      const cp = /^[0-9a-fA-F]+$/.test(digits) ? Number.parseInt(digits, 16) : Number.NaN;
      if (!(cp <= 0x10ffff)) this.failAt(start, 'invalid escape \\x: write \\x41 or \\x{10FFFF}');
      return this.literalPart(cp);
    }
    if (e >= '0' && e <= '7') {
      const digits = /^[0-7]{0,2}/.exec(this.src.slice(this.pos))?.[0] ?? '';
      if (e !== '0' && digits === '') this.failAt(start, `\\${e} is a backreference, which RE2 (Go) does not support; match the text itself`);
      this.pos += digits.length;
      return this.literalPart(Number.parseInt(e + digits, 8));
    }
    if (e === '8' || e === '9') this.failAt(start, `\\${e} is a backreference, which RE2 (Go) does not support; match the text itself`);
    if (/[\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e]/.test(e)) return this.literalPart(e.charCodeAt(0));
    const javascriptOnly: Record<string, string> = {
      k: '\\k<name> is a backreference, which RE2 (Go) does not support; match the text itself',
      u: '\\u is JavaScript syntax; RE2 writes a code point as \\x{0041}',
      c: '\\c (control letter) is not RE2 syntax; write \\x01 and the like',
      C: '\\C (any byte) has no JavaScript equivalent; use . instead',
      Z: '\\Z is not RE2 syntax; write \\z for the end of text',
      G: '\\G is not RE2 syntax',
    };
    this.failAt(start, javascriptOnly[e] ?? `invalid escape \\${e}${inClass ? ' in a class' : ''}: RE2 (Go) does not know it`);
  }

  private failAt(at: number, what: string): never {
    this.pos = at;
    this.fail(what);
  }

  private literalPart(cp: number): ClassPart {
    return { text: hex(cp), newline: cp === newline };
  }

  private repeatAhead(): boolean {
    return /^\{\d+(,\d*)?\}/.test(this.src.slice(this.pos));
  }

  private quantifier(c: string): void {
    if (!this.atom) this.fail(`missing argument to repetition operator ${c}`);
    let text = c;
    if (c === '{') {
      const match = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.pos)) as RegExpExecArray;
      const min = Number(match[1]);
      const max = match[3] === undefined || match[3] === '' ? undefined : Number(match[3]);
      if (min > maxRepeat || (max !== undefined && max > maxRepeat)) this.fail(`repeat count ${match[0]} is above RE2's limit of ${maxRepeat}`);
      if (max !== undefined && max < min) this.fail(`invalid repeat count ${match[0]}: the maximum is below the minimum`);
      text = match[0];
      this.pos += match[0].length;
    } else {
      this.pos += 1;
    }
    let lazy = false;
    if (this.src[this.pos] === '?') {
      lazy = true;
      this.pos += 1;
    }
    const next = this.src[this.pos];
    if (next === '*' || next === '+' || next === '?' || (next === '{' && this.repeatAhead())) {
      this.fail(`invalid nested repetition operator ${text}${lazy ? '?' : ''}${next}: RE2 (Go) refuses it; group the inner part, e.g. (?:a+)*`);
    }
    // (?U) swaps greedy and lazy, as in Go.
    if (lazy !== this.flags.U) text += '?';
    this.emit(text, false);
  }

  private openGroup(): void {
    const rest = this.src.slice(this.pos);
    const saved = { ...this.flags };
    if (rest.startsWith('(?=') || rest.startsWith('(?!') || rest.startsWith('(?<=') || rest.startsWith('(?<!')) {
      this.fail('lookahead and lookbehind are JavaScript/PCRE syntax that RE2 (Go) does not support; match the text itself');
    }
    if (rest.startsWith('(?>') || rest.startsWith('(?#') || rest.startsWith('(?|')) {
      this.fail(`${rest.slice(0, 3)} is not RE2 syntax`);
    }
    const named = /^\(\?P?<([A-Za-z0-9_]+)>/.exec(rest);
    if (named) {
      // Names mean nothing to a rule; a plain capturing group matches the same.
      this.pos += named[0].length;
      this.pushGroup(saved, '(');
      return;
    }
    const flagGroup = /^\(\?([imsU]*)(?:-([imsU]*))?([:)])/.exec(rest);
    if (rest.startsWith('(?') && !flagGroup) this.fail('unknown group flag: RE2 knows (?:re), (?P<name>re), (?<name>re) and the flags i, m, s, U');
    if (!flagGroup) {
      this.pos += 1;
      this.pushGroup(saved, '(');
      return;
    }
    this.pos += flagGroup[0].length;
    const next = { ...this.flags };
    for (const f of flagGroup[1] ?? '') next[f as keyof Flags] = true;
    for (const f of flagGroup[2] ?? '') next[f as keyof Flags] = false;
    const caseChange = next.i !== this.flags.i;
    const modifier = caseChange ? (next.i ? '(?i:' : '(?-i:') : '(?:';
    if (flagGroup[3] === ':') {
      this.pushGroup(saved, modifier);
      this.flags = next;
      return;
    }
    // (?i) in the middle: the rest of the enclosing group, as a modifier group closed with it.
    this.flags = next;
    if (caseChange) {
      this.out += modifier;
      this.modifiers.push(modifier);
    }
    this.atom = false;
  }

  private pushGroup(saved: Flags, text: string): void {
    this.flagStack.push(saved);
    this.modifierStack.push(this.modifiers);
    this.modifiers = [];
    this.emit(text, false);
  }

  private closeGroup(): void {
    const saved = this.flagStack.pop();
    if (!saved) this.fail('unexpected ): no group is open');
    this.pos += 1;
    this.out += ')'.repeat(this.modifiers.length);
    this.modifiers = this.modifierStack.pop() ?? [];
    this.flags = saved;
    this.emit(')', true);
  }

  /** `[...]`: items become `v`-mode operands, so each means what it means in RE2. */
  private charClass(): void {
    const start = this.pos;
    this.pos += 1;
    let negated = false;
    if (this.src[this.pos] === '^') {
      negated = true;
      this.pos += 1;
    }
    const parts: ClassPart[] = [];
    let first = true;
    for (;;) {
      if (this.pos >= this.src.length) this.failAt(start, 'missing closing ] of a character class');
      const c = this.src[this.pos] as string;
      if (c === ']' && !first) break;
      first = false;
      const posix = /^\[:(\^?)([a-z]+):\]/.exec(this.src.slice(this.pos));
      if (posix) {
        const list = posixClasses[posix[2] as string];
        if (!list) this.fail(`[:${posix[2]}:] is not a POSIX class RE2 knows (alnum, alpha, digit, space, word, ...)`);
        this.pos += posix[0].length;
        parts.push(ranges(list, posix[1] === '^'));
        continue;
      }
      const lo = this.classChar();
      if (typeof lo !== 'number') {
        parts.push(lo);
        continue;
      }
      if (this.src[this.pos] === '-' && this.src[this.pos + 1] !== ']' && this.pos + 1 < this.src.length) {
        this.pos += 1;
        const hi = this.classChar();
        if (typeof hi !== 'number') this.fail('invalid character class range: a class cannot end a range');
        if (hi < lo) this.fail('invalid character class range: the end is below the start');
        parts.push({ text: rangeText([lo, hi]), newline: lo <= newline && newline <= hi });
        continue;
      }
      parts.push(this.literalPart(lo));
    }
    this.pos += 1;
    const holdsNewline = parts.some((p) => p.newline);
    const canMatchNewline = negated ? !holdsNewline : holdsNewline;
    if (canMatchNewline) this.multiLine = true;
    this.emit(`[${negated ? '^' : ''}${parts.map((p) => p.text).join('')}]`, true);
  }

  /** A character of a class: its code point, or a class operand for an escape like \d. */
  private classChar(): number | ClassPart {
    const c = this.src[this.pos] as string;
    if (c === '\\') {
      const e = this.src[this.pos + 1];
      if (e === 'b' || e === 'B' || e === 'A' || e === 'z' || e === 'Q') this.fail(`\\${e} has no meaning inside a character class`);
      const part = this.classEscape(true);
      const literal = /^\\u\{([0-9a-f]+)\}$/.exec(part.text);
      return literal ? Number.parseInt(literal[1] as string, 16) : part;
    }
    const cp = this.src.codePointAt(this.pos) as number;
    this.pos += cp > 0xffff ? 2 : 1;
    return cp;
  }
}

/** Translates one RE2 pattern, or throws Re2Error naming what RE2 or JavaScript cannot do. */
export function translateRe2(pattern: string): TranslatedPattern {
  const translated = new Translator(pattern).translate();
  try {
    new RegExp(translated.source, translated.flags);
  } catch (err) {
    throw new Re2Error(`cannot be expressed in JavaScript: ${(err as Error).message}`);
  }
  return translated;
}
