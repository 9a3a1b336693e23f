/**
 * The agent's Prometheus metrics in the text exposition format (0.0.4), without prom-client,
 * for issue 16's memory budget against NPD: on every node prom-client cost the running agent
 * 1.5 MiB of RSS, 1.3 of it private (bench/footprint.ts), for a dozen series. The output is
 * checked by `promtool check metrics` and scraped by a real Prometheus in the tests. The
 * controller, one per cluster, keeps prom-client.
 */
export type Labels = Readonly<Record<string, string>>;

export const exposition = 'text/plain; version=0.0.4; charset=utf-8';

const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A label value as the format escapes it: backslash, double quote and line feed. */
function escapeValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text escapes backslash and line feed only. */
function escapeHelp(help: string): string {
  return help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

function labelText(names: readonly string[], values: readonly string[], extra = ''): string {
  const parts = names.map((name, i) => `${name}="${escapeValue(values[i] ?? '')}"`);
  if (extra) parts.push(extra);
  return parts.length > 0 ? `{${parts.join(',')}}` : '';
}

interface Series<T> {
  values: string[];
  state: T;
}

/** One metric family: its name, help, type and series by label values. */
abstract class Family<T> {
  private readonly series = new Map<string, Series<T>>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'histogram',
    readonly labelNames: readonly string[],
  ) {
    if (!metricName.test(name)) throw new Error(`metric name ${JSON.stringify(name)} is not a Prometheus metric name`);
    for (const label of labelNames) {
      if (!labelName.test(label) || label.startsWith('__') || label === 'le') throw new Error(`${name}: ${JSON.stringify(label)} cannot be a label name`);
    }
  }

  protected abstract fresh(): T;
  protected abstract sampleLines(labels: readonly string[], state: T): string[];

  protected entry(labels: Labels): Series<T> {
    const values = this.labelNames.map((name) => {
      const value = labels[name];
      if (value === undefined) throw new Error(`${this.name}: label ${name} is missing`);
      return value;
    });
    if (Object.keys(labels).length !== this.labelNames.length) throw new Error(`${this.name}: labels ${Object.keys(labels).join(',')}, expected ${this.labelNames.join(',')}`);
    const key = values.join('\u0000');
    let found = this.series.get(key);
    if (!found) {
      found = { values, state: this.fresh() };
      this.series.set(key, found);
    }
    return found;
  }

  remove(labels: Labels): void {
    this.series.delete(this.labelNames.map((name) => labels[name] ?? '').join('\u0000'));
  }

  text(): string {
    const lines = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`];
    for (const { values, state } of this.series.values()) lines.push(...this.sampleLines(values, state));
    return `${lines.join('\n')}\n`;
  }
}

export class Counter extends Family<{ value: number }> {
  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    super(name, help, 'counter', labelNames);
  }
  protected fresh() {
    return { value: 0 };
  }
  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new Error(`${this.name}: a counter only goes up (inc by ${by})`);
    this.entry(labels).state.value += by;
  }
  protected sampleLines(labels: readonly string[], state: { value: number }): string[] {
    return [`${this.name}${labelText(this.labelNames, labels)} ${formatValue(state.value)}`];
  }
}

export class Gauge extends Family<{ value: number }> {
  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    super(name, help, 'gauge', labelNames);
  }
  protected fresh() {
    return { value: 0 };
  }
  set(labels: Labels, value: number): void {
    this.entry(labels).state.value = value;
  }
  protected sampleLines(labels: readonly string[], state: { value: number }): string[] {
    return [`${this.name}${labelText(this.labelNames, labels)} ${formatValue(state.value)}`];
  }
}

interface HistogramState {
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram extends Family<HistogramState> {
  private readonly buckets: readonly number[];

  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]) {
    super(name, help, 'histogram', labelNames);
    if (buckets.length === 0 || buckets.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= (buckets[i - 1] as number)))) {
      throw new Error(`${name}: buckets must be finite and increasing`);
    }
    this.buckets = buckets;
  }
  protected fresh(): HistogramState {
    return { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
  }
  observe(labels: Labels, value: number): void {
    const state = this.entry(labels).state;
    this.buckets.forEach((bound, i) => {
      if (value <= bound) state.counts[i] = (state.counts[i] as number) + 1;
    });
    state.sum += value;
    state.count += 1;
  }
  protected sampleLines(labels: readonly string[], state: HistogramState): string[] {
    const lines = this.buckets.map((bound, i) => `${this.name}_bucket${labelText(this.labelNames, labels, `le="${formatValue(bound)}"`)} ${state.counts[i]}`);
    lines.push(`${this.name}_bucket${labelText(this.labelNames, labels, 'le="+Inf"')} ${state.count}`);
    lines.push(`${this.name}_sum${labelText(this.labelNames, labels)} ${formatValue(state.sum)}`);
    lines.push(`${this.name}_count${labelText(this.labelNames, labels)} ${state.count}`);
    return lines;
  }
}

/** Families in the order registered; `collect` hooks refresh gauges read at scrape time. */
export class MetricsRegistry {
  private readonly families: Array<{ text(): string }> = [];
  private readonly collectors: Array<() => void> = [];

  register<F extends { text(): string }>(family: F): F {
    this.families.push(family);
    return family;
  }

  onCollect(collect: () => void): void {
    this.collectors.push(collect);
  }

  text(): string {
    for (const collect of this.collectors) collect();
    return this.families.map((f) => f.text()).join('');
  }
}
