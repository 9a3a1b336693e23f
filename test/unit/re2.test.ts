import { describe, expect, it } from 'vitest';
import { translateRe2 } from '../../agent/monitors/re2.js';

/** Does the RE2 pattern match the text (anywhere, as Go's MatchString)? */
const matches = (pattern: string, text: string) => {
  const t = translateRe2(pattern);
  return new RegExp(t.source, t.flags).test(text);
};

describe('RE2 patterns of NPD rule files, read as Go reads them', () => {
  it.each([
    // [pattern, text, Go's answer]
    ['\\s', '\u000b', false], // RE2's \s is [\t\n\f\r ]: no vertical tab, which JavaScript's \s holds
    ['\\s', '\u00a0', false], // nor a no-break space
    ['\\d', '\u0663', false], // ASCII digits only
    ['\\w', 'é', false],
    ['a.c', 'a\rc', true], // Go's . stops at \n only; JavaScript's also at \r
    ['a.c', 'a\nc', false],
    ['(?s)a.c', 'a\nc', true],
    ['[^x]', '\n', true],
    ['[\\S ]+:x', 'kworker/0:1 x:x', true],
    ['(?i)oom', 'OOM', true],
    ['x(?i)a|b', 'B', true], // the flag holds past |, which still splits the whole pattern
    ['x(?i)a|b', 'xA', true],
    ['x(?i)a|b', 'A', false],
    ['(?m)^b$', 'a\nb\nc', true],
    ['^b$', 'a\nb\nc', false],
    ['\\Aa', 'ba', false],
    ['a\\z', 'a\n', false], // \z is the very end, as JavaScript's $ without the m flag
    ['a$', 'a\n', false], // Go's $ without (?m) is \z too
    ['(?U)a+', 'aaa', true],
    ['[[:digit:]]{3}', 'x123', true],
    ['[[:^alpha:]]', 'abc', false],
    ['\\pL+\\p{Greek}', 'abα', true],
    ['\\PL', 'abc', false],
    ['\\Q[x]*\\E', '[x]*', true],
    ['\\x41\\x{42}\\103', 'ABC', true],
    ['a{,2}', 'a{,2}', true], // not a repeat in Go: literal text
    ['a{2}', 'aa', true],
    ['(?P<pid>\\d+) (?<name>\\w+)', '12 bash', true],
    ['\\.\\-\\:\\/', '.-:/', true],
    ['[a-c\\]-]+', 'b]-', true],
  ])('%s against %j: %s', (pattern, text, expected) => {
    expect(matches(pattern, text)).toBe(expected);
  });

  it('(?U) makes a quantifier lazy and a lazy one greedy, as in Go', () => {
    const exec = (pattern: string, text: string) => {
      const t = translateRe2(pattern);
      return new RegExp(t.source, t.flags).exec(text)?.[0];
    };
    expect(exec('(?U)a+', 'aaa')).toBe('a');
    expect(exec('(?U)a+?', 'aaa')).toBe('aaa');
    expect(exec('a+?', 'aaa')).toBe('a');
  });

  it.each([
    ['(a)\\1', /\\1 is a backreference, which RE2 \(Go\) does not support/],
    ['(?<n>a)\\k<n>', /\\k<name> is a backreference/],
    ['foo(?=bar)', /lookahead and lookbehind are JavaScript\/PCRE syntax that RE2 \(Go\) does not support/],
    ['(?<!x)y', /lookahead and lookbehind/],
    ['(?>a)', /is not RE2 syntax/],
    ['\\u0041', /\\u is JavaScript syntax; RE2 writes a code point as \\x\{0041\}/],
    ['\\C', /\\C \(any byte\) has no JavaScript equivalent/],
    ['\\Z', /write \\z for the end of text/],
    ['a{1001}', /above RE2's limit of 1000/],
    ['a{3,2}', /the maximum is below the minimum/],
    ['a**', /invalid nested repetition operator/],
    ['*a', /missing argument to repetition operator/],
    ['[a', /missing closing \] of a character class/],
    ['(a', /missing closing \)/],
    ['a)', /unexpected \)/],
    ['\\p{Klingon}', /not a Unicode category or script RE2 knows/],
    ['[[:klingon:]]', /not a POSIX class RE2 knows/],
    ['[z-a]', /the end is below the start/],
    ['\\e', /invalid escape \\e/],
  ])('refuses %s, saying why', (pattern, message) => {
    expect(() => translateRe2(pattern)).toThrow(message);
  });

  it('knows which patterns can only match within the newest line (NPD lastLineOnly)', () => {
    expect(translateRe2('EXT4-fs error .*').lastLineOnly).toBe(true);
    expect(translateRe2('task [\\S ]+:\\w+ blocked').lastLineOnly).toBe(true);
    expect(translateRe2('[^x]+').lastLineOnly).toBe(false); // holds \n
    expect(translateRe2('a\\nb').lastLineOnly).toBe(false);
    expect(translateRe2('(?s)a.b').lastLineOnly).toBe(false);
    expect(translateRe2('\\s+').lastLineOnly).toBe(false);
    expect(translateRe2('^start').lastLineOnly).toBe(false); // ^ is the start of the whole buffer
    expect(translateRe2('a|b').lastLineOnly).toBe(false); // NPD's \z binds to the last branch only
    expect(translateRe2('(?:a|b)').lastLineOnly).toBe(true);
  });
});
