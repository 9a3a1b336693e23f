import type { LogRule, LogRuleSet } from './logRules.js';

export interface RuleMatch {
  rule: LogRule;
  /** The matched lines, oldest first (one, unless the pattern spans lines). */
  lines: string[];
}

interface CompiledRule {
  rule: LogRule;
  /** The pattern anchored to the end of the buffer, as NPD appends `\z`. */
  regexp: RegExp;
}

/** A leading `.*` (translated `[^\n]*`, greedy or lazy), when a quantifier does not follow it. */
const leadingAnyRun = /^\[\^\\n\]\*\??(?![*+?{])/;

/**
 * What a rule's regexp tests. A one-line rule is only tested (the message is the whole line), so
 * a leading `.*` changes nothing but the cost: JavaScript retries it at every offset, which made
 * NPD's three CPER patterns 95% of the matching time, ~400 µs a line against ~15 without it
 * (bench/kmsgFlood.ts lost 89% of a 10,000 lines/s flood to it).
 */
function testedSource(rule: LogRule): string {
  return rule.compiled.lastLineOnly ? rule.compiled.source.replace(leadingAnyRun, '') : rule.compiled.source;
}

/**
 * NPD's matching for one rule set: the last `bufferSize` lines joined with `\n`, and a rule
 * matches when its pattern matches up to the end of them (NPD's pattern + `\z`), so a
 * multi-line pattern matches across lines and every pattern ends on the newest line. A rule
 * that cannot span lines is tried on the newest line alone (NPD's lastLineOnly: the same
 * result, without joining). The buffer is a fixed ring: memory does not grow with log volume.
 */
export class LogMatcher {
  private readonly ring: string[];
  private count = 0;
  private readonly compiled: CompiledRule[];
  private readonly needsJoin: boolean;

  constructor(readonly set: LogRuleSet) {
    this.ring = new Array<string>(set.bufferSize).fill('');
    this.compiled = set.rules.map((rule) => ({ rule, regexp: new RegExp(`${testedSource(rule)}$`, rule.compiled.flags) }));
    this.needsJoin = this.compiled.some((c) => !c.rule.compiled.lastLineOnly);
  }

  /** Adds the newest line and returns every rule it completes, in rule order (as NPD reports them). */
  push(line: string): RuleMatch[] {
    const size = this.ring.length;
    this.ring[this.count % size] = line;
    this.count += 1;
    const held = Math.min(this.count, size);
    let joined: string | undefined;
    let lines: string[] | undefined;
    const matches: RuleMatch[] = [];
    for (const { rule, regexp } of this.compiled) {
      if (rule.compiled.lastLineOnly) {
        if (regexp.test(line)) matches.push({ rule, lines: [line] });
        continue;
      }
      if (!this.needsJoin) continue;
      lines ??= this.lines(held);
      joined ??= lines.join('\n');
      const at = joined.search(regexp);
      if (at < 0) continue;
      // The lines from the one the match starts in to the newest.
      let offset = 0;
      let first = 0;
      for (let i = 0; i < lines.length; i++) {
        const end = offset + (lines[i] as string).length;
        if (at <= end) {
          first = i;
          break;
        }
        offset = end + 1;
      }
      matches.push({ rule, lines: lines.slice(first) });
    }
    return matches;
  }

  private lines(held: number): string[] {
    const size = this.ring.length;
    const out: string[] = [];
    for (let i = this.count - held; i < this.count; i++) out.push(this.ring[i % size] as string);
    return out;
  }
}
