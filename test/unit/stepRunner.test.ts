import { describe, expect, it } from 'vitest';
import { failure, type ProviderResult, type ProviderTarget, type RemediationProvider, type StepStatus } from '../../controller/providers/provider.js';
import { runStepToOutcome, type StepRunOptions } from '../../controller/stepRunner.js';
import { fakeTime } from '../support/fakeTime.js';

const target: ProviderTarget = { name: 'node-a', uid: 'u-a', providerID: 'azure:///x', bootID: 'b' };
const ok: ProviderResult = { ok: true, detail: 'restart succeeded' };
const conflict = failure('OperationNotAllowed', 'another operation is in progress', 'transient');
const serverError = failure('InternalServerError', 'An internal execution error occurred.', 'unknown');
const running: StepStatus = { state: 'running', detail: 'the instance is updating' };

/** A provider that answers sends and inspections from scripts, and records when each was asked. */
function scripted(sendScript: ProviderResult[], inspectScript: StepStatus[] = [], now: () => number = () => 0) {
  const sends: number[] = [];
  const inspections: number[] = [];
  const provider: RemediationProvider = {
    name: 'azure',
    reboot: async () => {
      sends.push(now());
      const next = sendScript.shift();
      if (!next) throw new Error('no more sends scripted: a send the test did not expect');
      return next;
    },
    reimage: () => Promise.reject(new Error('not this step')),
    redeploy: () => Promise.reject(new Error('not this step')),
    inspect: async (_step, _target, requestedAt) => {
      inspections.push(requestedAt);
      const next = inspectScript.shift();
      if (!next) throw new Error('no more inspections scripted');
      return next;
    },
  };
  return { provider, sends, inspections };
}

function setup(sendScript: ProviderResult[], inspectScript: StepStatus[] = [], overrides: Partial<StepRunOptions> = {}) {
  const time = fakeTime();
  const { provider, sends, inspections } = scripted(sendScript, inspectScript, time.now);
  const options: StepRunOptions = {
    signal: new AbortController().signal,
    budgetMs: 900_000,
    now: time.now,
    sleep: time.sleep,
    timeout: time.timeout,
    random: () => 0.5,
    ...overrides,
  };
  return { run: () => runStepToOutcome(provider, 'reboot', target, options), sends, inspections, time };
}

describe('one ladder step run to its outcome', () => {
  it('a step the provider completes has ended, after one request', async () => {
    const { run, sends } = setup([ok]);
    expect(await run()).toEqual({ kind: 'ended', detail: 'restart succeeded' });
    expect(sends).toHaveLength(1);
  });

  it('a 409 (another operation in progress) followed by success is one step that ended, not an error', async () => {
    const { run, sends, time } = setup([conflict, ok]);
    expect(await run()).toEqual({ kind: 'ended', detail: 'restart succeeded' });
    expect(sends).toHaveLength(2);
    // Equal jitter at random 0.5: three quarters of the 1 s initial backoff.
    expect(time.waits).toEqual([750]);
  });

  it('waits at least what Retry-After says before sending again', async () => {
    const { run, time } = setup([failure('TooManyRequests', 'throttled', 'transient', 7_000), ok]);
    expect((await run()).kind).toBe('ended');
    expect(time.waits).toEqual([7_000]);
  });

  it('backs off exponentially with jitter up to the cap, and never waits past the budget: then it is inconclusive, not failed', async () => {
    const throttled = Array.from({ length: 50 }, () => conflict);
    const { run, sends, time } = setup(throttled, [], { budgetMs: 60_000, backoff: { initialMs: 1_000, maxMs: 8_000 } });
    const outcome = await run();
    expect(outcome).toEqual({ kind: 'inconclusive', failure: conflict });
    expect(time.waits.slice(0, 6)).toEqual([750, 1_500, 3_000, 6_000, 6_000, 6_000]);
    expect(time.waits.reduce((a, b) => a + b, 0)).toBeLessThan(60_000);
    expect(sends).toHaveLength(time.waits.length + 1);
  });

  it('jitter spreads the waits between half and all of the backoff', async () => {
    const low = setup([conflict, conflict, ok], [], { random: () => 0 });
    await low.run();
    const high = setup([conflict, conflict, ok], [], { random: () => 0.999 });
    await high.run();
    expect(low.time.waits).toEqual([500, 1_000]);
    expect(high.time.waits.map(Math.round)).toEqual([1_000, 1_999]);
  });

  it('never re-sends a request that may have reached the backend: it asks what became of it until it ran', async () => {
    const { run, sends, inspections, time } = setup([serverError], [running, running, { state: 'succeeded', detail: 'finished at 08:03' }]);
    const started = time.now();
    expect(await run()).toEqual({ kind: 'ended', detail: 'finished at 08:03' });
    expect(sends).toEqual([started]);
    // Each inspection asks about the request as sent.
    expect(inspections).toEqual([started, started, started]);
  });

  it('sends again only once the backend says it never got the request', async () => {
    const { run, sends } = setup([serverError, ok], [{ state: 'not-started', detail: 'last operation a day ago' }]);
    expect((await run()).kind).toBe('ended');
    expect(sends).toHaveLength(2);
  });

  it('a step that ran and failed (inspected) is failed, with the backend\'s code', async () => {
    const failed = failure('VMRestartFailed', 'the restart failed', 'failed');
    const { run, sends } = setup([serverError], [running, { state: 'failed', failure: failed }]);
    expect(await run()).toEqual({ kind: 'failed', failure: failed });
    expect(sends).toHaveLength(1);
  });

  it('a backend that cannot be asked right now is asked again, and the request is still not re-sent', async () => {
    const unreadable = failure('ArmUnreachable', 'connect ECONNREFUSED', 'transient', 5_000);
    const { run, sends, time } = setup([serverError], [{ state: 'failed', failure: unreadable }, { state: 'succeeded', detail: 'done' }]);
    expect((await run()).kind).toBe('ended');
    expect(sends).toHaveLength(1);
    expect(time.waits[1]).toBe(5_000);
  });

  it('failed and permanent answers end the step at once, without waiting or retrying', async () => {
    for (const answer of [failure('VMRedeploymentFailed', 'x', 'failed'), failure('NotAScaleSetInstance', 'y', 'permanent')]) {
      const { run, sends, time } = setup([answer]);
      expect(await run()).toEqual({ kind: answer.class, failure: answer });
      expect([sends.length, time.waits]).toEqual([1, []]);
    }
  });

  it('an operation that finishes late in the budget is still seen: the last wait is cut short for one more look', async () => {
    const late: StepStatus[] = [running, running, running, running, running, { state: 'succeeded', detail: 'the instance finished an operation' }];
    const { run, sends, time } = setup([failure('OperationStillRunning', 'in progress', 'unknown')], late, { budgetMs: 30_000 });
    expect(await run()).toEqual({ kind: 'ended', detail: 'the instance finished an operation' });
    expect(sends).toHaveLength(1);
    // 750 + 1500 + 3000 + 6000 + 12000 = 23250 ms; the next backoff (24 s) is cut to end 1 s before the budget.
    expect(time.waits).toEqual([750, 1_500, 3_000, 6_000, 12_000, 5_750]);
  });

  it('an operation still running when the budget ends is inconclusive (retry the same step), never failed', async () => {
    const stillRunning = Array.from({ length: 100 }, () => running);
    const { run, sends } = setup([failure('OperationStillRunning', 'in progress', 'unknown')], stillRunning, { budgetMs: 120_000 });
    expect(await run()).toEqual({ kind: 'inconclusive', failure: failure('StepStillRunning', 'the instance is updating', 'unknown') });
    expect(sends).toHaveLength(1);
  });

  it('a provider call that hangs is cut at the budget: inconclusive', async () => {
    const budget = new AbortController();
    const provider: RemediationProvider = {
      name: 'azure',
      reboot: (_t, signal) =>
        new Promise((resolve) => signal.addEventListener('abort', () => resolve(failure('OperationStillRunning', 'in progress', 'unknown')), { once: true })),
      reimage: () => Promise.reject(new Error('unused')),
      redeploy: () => Promise.reject(new Error('unused')),
      inspect: () => Promise.reject(new Error('no time left to inspect')),
    };
    const run = runStepToOutcome(provider, 'reboot', target, { signal: new AbortController().signal, budgetMs: 1_000, timeout: () => budget.signal });
    budget.abort();
    expect(await run).toMatchObject({ kind: 'inconclusive', failure: { code: 'OperationStillRunning' } });
  });

  it('lost leadership aborts the step, in a wait or before it starts', async () => {
    const leadership = new AbortController();
    const time = fakeTime();
    const { provider, sends } = scripted([conflict, ok], [], time.now);
    const sleep = async (ms: number, signal: AbortSignal) => {
      leadership.abort(new Error('lease lost'));
      await time.sleep(ms, signal);
    };
    const options = { signal: leadership.signal, budgetMs: 60_000, now: time.now, sleep, timeout: time.timeout };
    expect(await runStepToOutcome(provider, 'reboot', target, options)).toEqual({ kind: 'aborted' });
    expect(sends).toHaveLength(1);
    expect(await runStepToOutcome(provider, 'reboot', target, options)).toEqual({ kind: 'aborted' });
    expect(sends).toHaveLength(1);
  });

  it("a new leader resuming its predecessor's step inspects before sending anything", async () => {
    const requestedAt = Date.parse('2026-03-02T07:55:00Z');
    const resumed = setup([], [running, { state: 'succeeded', detail: 'done' }], { inspectFirst: true, requestedAt });
    expect((await resumed.run()).kind).toBe('ended');
    expect(resumed.sends).toEqual([]);
    expect(resumed.inspections).toEqual([requestedAt, requestedAt]);
    // The first look costs no wait; the predecessor's request is minutes old.
    expect(resumed.time.waits).toEqual([750]);

    const neverSent = setup([ok], [{ state: 'not-started', detail: 'no operation since' }], { inspectFirst: true, requestedAt });
    expect((await neverSent.run()).kind).toBe('ended');
    expect(neverSent.sends).toHaveLength(1);
  });

  it('a provider that throws while sending has said nothing: the step is inspected, not re-sent', async () => {
    const time = fakeTime();
    let sends = 0;
    const provider: RemediationProvider = {
      name: 'azure',
      reboot: async () => {
        sends += 1;
        throw new Error('socket hang up');
      },
      reimage: () => Promise.reject(new Error('unused')),
      redeploy: () => Promise.reject(new Error('unused')),
      inspect: async () => ({ state: 'succeeded', detail: 'it went through' }),
    };
    const outcome = await runStepToOutcome(provider, 'reboot', target, { signal: new AbortController().signal, budgetMs: 60_000, now: time.now, sleep: time.sleep, timeout: time.timeout });
    expect(outcome).toEqual({ kind: 'ended', detail: 'it went through' });
    expect(sends).toBe(1);
  });

  it('a budget already spent concludes nothing and sends nothing', async () => {
    const { run, sends } = setup([ok], [], { budgetMs: 0 });
    expect(await run()).toMatchObject({ kind: 'inconclusive', failure: { code: 'StepBudgetExhausted' } });
    expect(sends).toEqual([]);
  });
});
