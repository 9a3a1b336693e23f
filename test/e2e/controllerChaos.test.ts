import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoordinationV1Api, type CoreV1Event } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stepEventReason } from '../../common/contract.js';
import { STEPS, parseRemediationState, type Step, type StoredState } from '../../controller/remediationState.js';
import { testCluster } from '../cluster/testCluster.js';
import { eventually, type CliProcess } from '../support/cliProcess.js';
import { RemediationHarness, poolLabel, sleep } from '../support/remediationHarness.js';
import { seededRandom } from '../support/seededRandom.js';

/**
 * Chaos under the remediation ladder: three controller replicas on one pool, the azure
 * provider against the ARM stand-in (every operation accepted and InProgress for a few polls,
 * Retry-After 1), twelve nodes made NotReady again and again until at least 50 ladders have
 * begun, while the current leader is SIGKILLed at random moments and a fresh replica takes
 * the dead one's place. What an operator must be able to count on afterwards:
 *
 * 1. no started step caused two ARM operations (or two POSTs): every operation falls between a
 *    Node<Step>Start event of its node and step and that step's first End or Error, and no
 *    started step holds two (an operation outside every started step fails too);
 * 2. never two leaders at once: in the Lease history each new holder took over at least
 *    renewDeadline after its predecessor's last renewal, with leaseTransitions counting every
 *    takeover, and no two replicas' `nodepulse_controller_leader` gauges read 1 at once;
 * 3. every Node<Step>Start is followed by an End or Error for that node and step before the
 *    next Start of that step, and no End or Error comes without a Start.
 *
 * The random choices (kill moments, how long each ARM operation runs, where each node
 * recovers, pauses between ladders) come from a seeded PRNG; the seed is printed, and
 * NODEPULSE_CHAOS_SEED=<seed> replays the same choices (the timing of the processes varies).
 * Every replica's log and the kill list are kept in a folder the test prints.
 */
let h: RemediationHarness;

beforeAll(async () => {
  h = await RemediationHarness.start(testCluster());
});

afterEach(async () => {
  await h.reset();
});

afterAll(async () => {
  await h?.close();
});

/** Nodes driven through ladders, and nodes that stay Ready (see the breaker setting below). */
const churned = 12;
const steady = 3;
const laddersWanted = 50;
const replicaCount = 3;
/** Kills stop after this long even if fewer ladders have begun (the test then fails on the count). */
const chaosBoundMs = 150_000;
/** The leader lives this long (uniform) after it is seen to hold the Lease, then it is killed. */
const killAfterMs = { min: 1_000, max: 7_000 };
const election = { leaseDurationSeconds: 3, renewDeadlineSeconds: 2, retryPeriodSeconds: 0.5 };
/**
 * Two replicas' gauges at 1 for longer than this at the same time is a double leader. A sample
 * reading 1 says the replica led at some instant between the request and the answer, and a
 * round trip took up to 2.4 s on the loaded test machine, so a run of such samples is only
 * *certain* from the first answer to the last request (a replica killed while holding the
 * Lease led until the kill). A correct election keeps leaseDuration - renewDeadline = 1 s
 * between the old leader's stop and the earliest takeover, so certain spans never touch. The
 * gauge follows the leadership watchdog, a timer that fires late on a busy event loop, while
 * the loop itself checks the clock before acting: 100 ms of overlap is allowed for that lag.
 */
const gaugeOverlapToleranceMs = 100;
const actionOf: Record<Step, string> = { reboot: 'restart', reimage: 'reimage', redeploy: 'redeploy' };

/** Runs `tick` every `ms` until the returned stop is awaited; a failed sample is only a missing sample. */
function every(ms: number, tick: () => Promise<void> | void): () => Promise<void> {
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        await tick();
      } catch {
        // The next tick samples again.
      }
      await sleep(ms);
    }
  })();
  return async () => {
    running = false;
    await loop;
  };
}

const timeOf = (value: unknown): number => new Date(value as string | Date).getTime();

interface LeaseSample {
  at: number;
  version: string;
  holder: string;
  acquiredAt: number;
  renewedAt: number;
  transitions: number;
}

interface GaugeSample {
  replica: string;
  sentAt: number;
  receivedAt: number;
  leader: boolean;
}

interface OperationStamp {
  instance: string;
  action: string;
  kind: 'post' | 'started';
  at: number;
}

interface Kill {
  at: number;
  victim: string;
  /** Nodes whose stored state said a step was started and not yet recorded. */
  stepsInFlight: number;
}

/** The replicas' Lease holder changes, with what makes each one safe or not. */
function leaseTakeovers(samples: LeaseSample[], renewDeadlineMs: number) {
  const records = samples.filter((s, i) => i === 0 || s.version !== samples[i - 1]?.version);
  const takeovers: Array<{ from: string; to: string; gapMs: number | undefined; transitions: [number, number] }> = [];
  const problems: string[] = [];
  for (let i = 1; i < records.length; i += 1) {
    const prev = records[i - 1];
    const next = records[i];
    if (!prev || !next) continue;
    if (next.transitions < prev.transitions) problems.push(`leaseTransitions went back from ${prev.transitions} to ${next.transitions}`);
    if (next.holder === prev.holder || next.holder === '') continue;
    // Released (holder ''): the holder stepped down before writing that, so no gap is owed.
    const gapMs = prev.holder === '' ? undefined : next.acquiredAt - prev.renewedAt;
    takeovers.push({ from: prev.holder, to: next.holder, gapMs, transitions: [prev.transitions, next.transitions] });
    if (next.transitions !== prev.transitions + 1) {
      problems.push(`${next.holder} took over from ${prev.holder || '(released)'} with leaseTransitions ${prev.transitions} -> ${next.transitions}`);
    }
    if (gapMs !== undefined && gapMs < renewDeadlineMs) {
      problems.push(`${next.holder} acquired ${gapMs} ms after ${prev.holder}'s last renewal, before its ${renewDeadlineMs} ms renew deadline ran out`);
    }
  }
  return { takeovers, problems };
}

/** Each replica's runs of leader=1 samples as the spans it certainly led; a replica killed while leading led until the kill. */
function gaugeSpans(samples: GaugeSample[], killedAt: Map<string, number>) {
  const spans: Array<{ replica: string; from: number; to: number }> = [];
  const byReplica = new Map<string, GaugeSample[]>();
  for (const s of samples) byReplica.set(s.replica, [...(byReplica.get(s.replica) ?? []), s]);
  for (const [replica, list] of byReplica) {
    list.sort((a, b) => a.sentAt - b.sentAt);
    let open: { from: number; to: number } | undefined;
    for (const s of list) {
      if (s.leader) open = open ? { from: open.from, to: s.sentAt } : { from: s.receivedAt, to: s.receivedAt };
      else if (open) {
        spans.push({ replica, ...open });
        open = undefined;
      }
    }
    if (open) spans.push({ replica, from: open.from, to: Math.max(open.to, killedAt.get(replica) ?? open.to) });
  }
  let worst = { overlapMs: 0, between: '' };
  for (const a of spans) {
    for (const b of spans) {
      if (a.replica >= b.replica) continue;
      const overlapMs = Math.min(a.to, b.to) - Math.max(a.from, b.from);
      if (overlapMs > worst.overlapMs) worst = { overlapMs, between: `${a.replica} [${a.from}, ${a.to}] and ${b.replica} [${b.from}, ${b.to}]` };
    }
  }
  return { spans, worst };
}

/** One started step as its events tell it: the Start, and the End or Error events that followed it. */
interface StepLife {
  node: string;
  instance: string;
  step: Step;
  startedAt: number;
  start: CoreV1Event;
  ends: CoreV1Event[];
  /** Until its first End or Error, else the next Start of the same step, else forever. */
  until: number;
}

/**
 * Every node's started steps from its events (oldest first), and the End/Error events that
 * came with no Start open before them (a Start event that was never written).
 */
function stepLives(events: Map<number, CoreV1Event[]>, names: string[]) {
  const lives: StepLife[] = [];
  const orphanEnds: string[] = [];
  for (const [index, list] of events) {
    const node = names[index] ?? '';
    for (const step of STEPS) {
      const mine: StepLife[] = [];
      for (const e of list) {
        if (e.reason === stepEventReason(step, 'Start')) {
          mine.push({ node, instance: String(index), step, startedAt: timeOf(e.eventTime), start: e, ends: [], until: Infinity });
        } else if (e.reason === stepEventReason(step, 'End') || e.reason === stepEventReason(step, 'Error')) {
          const open = mine.at(-1);
          if (open) open.ends.push(e);
          else orphanEnds.push(`${node}: ${e.reason} at ${String(e.eventTime)} with no ${stepEventReason(step, 'Start')} before it`);
        }
      }
      for (const [i, life] of mine.entries()) {
        const end = life.ends[0];
        life.until = end ? timeOf(end.eventTime) : (mine[i + 1]?.startedAt ?? Infinity);
      }
      lives.push(...mine);
    }
  }
  return { lives, orphanEnds };
}

/**
 * Proof 1: every ARM operation (and every POST) falls inside one started step of its node and
 * action, between the Start event and its first End or Error; no started step holds two. An
 * operation outside every started step was sent without a Start event, or after its End.
 */
function operationsPerStep(lives: StepLife[], stamps: OperationStamp[]) {
  const problems: string[] = [];
  for (const kind of ['started', 'post'] as const) {
    const what = kind === 'post' ? 'POST' : 'operation';
    const held = new Map<StepLife, number>();
    for (const op of stamps.filter((s) => s.kind === kind)) {
      const life = lives.find((l) => l.instance === op.instance && actionOf[l.step] === op.action && l.startedAt <= op.at && op.at < l.until);
      if (!life) {
        problems.push(`instance ${op.instance}: a ${op.action} ${what} at ${new Date(op.at).toISOString()} inside no started step`);
        continue;
      }
      held.set(life, (held.get(life) ?? 0) + 1);
    }
    for (const [life, count] of held) {
      if (count > 1) problems.push(`${life.node}: the ${life.start.reason} of ${String(life.start.eventTime)} has ${count} ${actionOf[life.step]} ${what}s`);
    }
  }
  return problems;
}

describe('the remediation controller under leader kills', () => {
  it('over 50 ladders with the leader SIGKILLed at random moments: no step sent twice, never two leaders, every started step ends in an End or Error event', async () => {
    const seed = Number(process.env.NODEPULSE_CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 32));
    // One stream per consumer, so each one's choices replay whatever the interleaving.
    const random = { arm: seededRandom(seed), kills: seededRandom(seed + 1), node: (i: number) => seededRandom(seed + 100 + i) };
    console.log(`controller chaos: seed ${seed} (replay the choices with NODEPULSE_CHAOS_SEED=${seed})`);
    const began = Date.now();
    const logDir = mkdtempSync(join(tmpdir(), 'nodepulse-chaos-'));
    console.log(`controller chaos: replica logs and kills go to ${logDir}`);

    const { pool, names } = await h.createPool(churned + steady);
    const config = h.controllerConfig(pool, { stepTimeoutSeconds: 20, retryDelaySeconds: 1 });
    Object.assign(config, {
      leaderElection: election,
      // Ladders run side by side (12 nodes at once); the circuit breaker has its own test in
      // remediation.test.ts, and here it would stop every ladder the moment 20% of the pool is
      // NotReady. 100% allows up to every node but one (the three steady nodes keep the
      // "every counted node is unhealthy" rule, which holds whatever the share, from firing).
      safety: { maxInFlight: churned, minStartSpacingSeconds: 0, stormCooldownSeconds: 0, circuitBreaker: { maxUnhealthyPercent: 100 } },
      // A recovered node's state is cleared 1 s later, so the next NotReady begins a new ladder at reboot.
      ladder: { ...(config.ladder as object), flapWindowSeconds: 1 },
    });
    // Every operation ARM accepts stays InProgress for 1 to 4 looks, a second apart: kills land mid-call.
    h.arm.script(...Array.from({ length: 2_000 }, () => ({ kind: 'accepted' as const, polls: 1 + Math.floor(random.arm() * 4), retryAfter: 1 })));

    const alive: CliProcess[] = [];
    let replicasStarted = 0;
    const spawn = () => {
      replicasStarted += 1;
      alive.push(h.startReplica(`chaos-${replicasStarted}`, config));
    };
    for (let i = 0; i < replicaCount; i += 1) spawn();
    const replicaOf = (holder: string) => alive.find((r) => holder.startsWith(`${r.name}_`));
    const waitFor = <T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number) => eventually(what, check, timeoutMs, alive, 200);

    // What the pool's Nodes say: each one's stored state, and every ladder ever begun (one per sequenceStartedAt).
    const admin = h.cluster.adminKubeConfig();
    const leases = admin.makeApiClient(CoordinationV1Api);
    const states = new Map<string, StoredState>();
    const ladders = new Set<string>();
    /** Recoveries the Nodes recorded (name -> recoveredAt), to find any whose Recovered event was lost. */
    const recoveries = new Map<string, Set<number>>();
    const stopNodes = every(250, async () => {
      const list = await h.admin.listNode({ labelSelector: `${poolLabel}=${pool}` });
      for (const node of list.items) {
        const name = node.metadata?.name ?? '';
        const state = parseRemediationState(node.metadata?.annotations?.['nodepulse.io/remediation-state']);
        states.set(name, state);
        if (state && state.phase !== 'unreadable') ladders.add(`${name}@${state.sequenceStartedAt}`);
        if (state?.phase === 'recovered' && state.recoveredAt !== undefined) recoveries.set(name, (recoveries.get(name) ?? new Set()).add(state.recoveredAt));
      }
    });
    const stepsInFlight = () => [...states.values()].filter((s) => s?.phase === 'started').length;

    // Every ARM POST and started operation, stamped when it shows in the stand-in (same process, every 20 ms).
    const stamps: OperationStamp[] = [];
    const seen = new Map<string, number>();
    const stopArm = every(20, () => {
      const at = Date.now();
      for (let i = 0; i < churned + steady; i += 1) {
        for (const action of Object.values(actionOf)) {
          const counts = { post: h.arm.posts(String(i), action), started: h.arm.started(String(i), action) };
          for (const kind of ['post', 'started'] as const) {
            const key = `${i}/${action}/${kind}`;
            for (let n = seen.get(key) ?? 0; n < counts[kind]; n += 1) stamps.push({ instance: String(i), action, kind, at });
            seen.set(key, counts[kind]);
          }
        }
      }
    });

    const leaseSamples: LeaseSample[] = [];
    const stopLease = every(100, async () => {
      const at = Date.now();
      const lease = await leases.readNamespacedLease({ name: 'nodepulse-controller', namespace: 'nodepulse' });
      leaseSamples.push({
        at,
        version: lease.metadata?.resourceVersion ?? '',
        holder: lease.spec?.holderIdentity ?? '',
        acquiredAt: timeOf(lease.spec?.acquireTime),
        renewedAt: timeOf(lease.spec?.renewTime),
        transitions: lease.spec?.leaseTransitions ?? 0,
      });
    });

    const gaugeSamples: GaugeSample[] = [];
    const stopGauges = every(200, async () => {
      await Promise.all(
        alive.map(async (replica) => {
          const port = replica.logged('nodepulse controller starting')[0]?.metricsPort;
          if (port === undefined) return;
          const sentAt = Date.now();
          const text = await (await fetch(`http://127.0.0.1:${String(port)}/metrics`, { signal: AbortSignal.timeout(2_000) })).text();
          const line = text.split('\n').find((l) => l.startsWith('nodepulse_controller_leader '));
          // A replica killed while we asked cannot report; an answer it gave still counts.
          if (line) gaugeSamples.push({ replica: replica.name, sentAt, receivedAt: Date.now(), leader: line.trim().endsWith(' 1') });
        }),
      );
    });

    // Kubelets: each churned node goes NotReady, stays so until the step picked for it has ended, then comes back.
    const chaosEnds = Date.now() + chaosBoundMs;
    let laddersDriven = 0;
    const recoveredAfter = { reboot: 0, reimage: 0, redeploy: 0 };
    const reached = (state: StoredState, target: Step) => {
      if (!state || state.phase === 'unreadable') return false;
      const at = STEPS.indexOf(state.step);
      const wanted = STEPS.indexOf(target);
      return at > wanted || (at === wanted && (state.phase === 'ended' || state.phase === 'failed')) || state.phase === 'needs-human';
    };
    const drive = async (name: string, i: number) => {
      const choose = random.node(i);
      while (laddersDriven < laddersWanted && Date.now() < chaosEnds) {
        laddersDriven += 1;
        const pick = choose();
        const target: Step = pick < 0.5 ? 'reboot' : pick < 0.8 ? 'reimage' : 'redeploy';
        const pause = choose() * 1_500;
        await h.setReady(name, 'False');
        await waitFor(`${name} to get through ${target}`, async () => (reached(states.get(name), target) ? true : undefined), 120_000);
        recoveredAfter[target] += 1;
        await h.setReady(name, 'True');
        await waitFor(`${name}'s remediation state to be cleared after it recovered`, async () => (states.get(name) === undefined ? true : undefined), 60_000);
        await sleep(pause);
      }
    };

    // The chaos: the Lease holder dies on the spot at a random moment of its term, a new replica starts.
    const kills: Kill[] = [];
    const killedAt = new Map<string, number>();
    let driving = true;
    const chaos = (async () => {
      while (driving && Date.now() < chaosEnds) {
        const leader = await waitFor('a live replica to hold the Lease', async () => replicaOf(leaseSamples.at(-1)?.holder ?? ''), 30_000);
        const deadline = Date.now() + killAfterMs.min + random.kills() * (killAfterMs.max - killAfterMs.min);
        while (driving && Date.now() < deadline) await sleep(50);
        if (!driving || replicaOf(leaseSamples.at(-1)?.holder ?? '') !== leader) continue;
        const kill = { at: Date.now(), victim: leader.name, stepsInFlight: stepsInFlight() };
        await leader.kill();
        kills.push(kill);
        killedAt.set(leader.name, kill.at);
        alive.splice(alive.indexOf(leader), 1);
        spawn();
      }
    })();

    /** For a lost event: the kill nearest to `at`, and what its victim last logged about `node`. */
    const nearestKill = (node: string, at: number) => {
      const kill = kills.reduce<Kill | undefined>((best, k) => (!best || Math.abs(k.at - at) < Math.abs(best.at - at) ? k : best), undefined);
      const victim = h.replicas.find((r) => r.name === kill?.victim);
      return kill && { victim: kill.victim, msAfter: kill.at - at, victimLog: victim?.logLines.filter((l) => l.includes(node)).slice(-3) ?? [] };
    };
    const keepLogs = () => {
      for (const replica of h.replicas) writeFileSync(join(logDir, `${replica.name}.log`), `${replica.logLines.join('\n')}\n`);
      writeFileSync(join(logDir, 'kills.json'), JSON.stringify(kills.map((k) => ({ ...k, at: new Date(k.at).toISOString() })), null, 1));
    };

    await waitFor('a first leader', async () => replicaOf(leaseSamples.at(-1)?.holder ?? ''), 30_000);
    const churnedNames = names.slice(0, churned);
    try {
      await Promise.all(churnedNames.map((name, i) => drive(name, i)));
    } finally {
      driving = false;
      await chaos;
      keepLogs();
    }
    const chaosMs = Date.now() - began;

    // The last leader settles: every ladder ends, every Start gets its End or Error.
    const eventsByNode = new Map<number, CoreV1Event[]>();
    const readEvents = async () => {
      for (const [i, name] of churnedNames.entries()) {
        const list = await h.eventsOf(name);
        eventsByNode.set(i, list.sort((a, b) => timeOf(a.eventTime) - timeOf(b.eventTime) || String(a.metadata?.name).localeCompare(String(b.metadata?.name))));
      }
    };
    // All states cleared means every outcome was recorded (and its event sent) at least a second ago.
    await waitFor('every ladder to end with its state cleared', async () => (churnedNames.every((name) => states.get(name) === undefined) ? true : undefined), 60_000).finally(keepLogs);
    await sleep(2_000);
    await Promise.all([stopNodes(), stopArm(), stopLease(), stopGauges()]);
    await readEvents();

    const allEvents = [...eventsByNode.values()].flat();
    const reasons: Record<string, number> = {};
    for (const e of allEvents) reasons[e.reason ?? ''] = (reasons[e.reason ?? ''] ?? 0) + 1;
    const firstSteps = allEvents.filter((e) => e.reason === 'NodeRebootStart' && /first step of the sequence \(attempt 1 of/.test(e.message ?? '') && !/inconclusive/.test(e.message ?? ''));
    const operations = Object.fromEntries(Object.values(actionOf).map((a) => [a, h.arm.actionCalls(a).length]));
    const takeoverCheck = leaseTakeovers(leaseSamples, election.renewDeadlineSeconds * 1000);
    const gauges = gaugeSpans(gaugeSamples, killedAt);
    const gaps = takeoverCheck.takeovers.flatMap((t) => (t.gapMs === undefined ? [] : [t.gapMs]));
    const { lives, orphanEnds } = stepLives(eventsByNode, churnedNames);
    const perStep = operationsPerStep(lives, stamps);
    const unended = lives.filter((l) => l.ends.length === 0).map((l) => ({ node: l.node, start: l.start.reason, at: String(l.start.eventTime), nearestKill: nearestKill(l.node, l.startedAt) }));
    // Not one of the three proofs, but the same kind of loss: a recovery on the Node with no Recovered event.
    const lostRecovered = churnedNames.flatMap((name, i) => {
      const events = (eventsByNode.get(i) ?? []).filter((e) => e.reason === 'NodeRemediationRecovered').map((e) => timeOf(e.eventTime));
      return [...(recoveries.get(name) ?? [])]
        .filter((at) => !events.some((t) => Math.abs(t - at) < 5_000))
        .map((at) => ({ node: name, recoveredAt: new Date(at).toISOString(), nearestKill: nearestKill(name, at) }));
    });
    const summary = {
      seed,
      wallSeconds: Math.round((Date.now() - began) / 1000),
      chaosSeconds: Math.round(chaosMs / 1000),
      ladders: { begun: ladders.size, firstRebootStartEvents: firstSteps.length, recoveredAfter },
      kills: { total: kills.length, withStepsInFlight: kills.filter((k) => k.stepsInFlight > 0).length, stepsInFlightAtKills: kills.reduce((n, k) => n + k.stepsInFlight, 0) },
      replicasStarted,
      arm: { posts: operations, operationsStarted: stamps.filter((s) => s.kind === 'started').length, calls: h.arm.calls.length },
      events: reasons,
      lease: {
        samples: leaseSamples.length,
        takeovers: takeoverCheck.takeovers.length,
        minTakeoverGapMs: gaps.length > 0 ? Math.min(...gaps) : undefined,
        finalTransitions: leaseSamples.at(-1)?.transitions,
      },
      gauge: {
        samples: gaugeSamples.length,
        longestRoundTripMs: Math.max(0, ...gaugeSamples.map((g) => g.receivedAt - g.sentAt)),
        leaderSpans: gauges.spans.length,
        worstOverlapMs: gauges.worst.overlapMs,
      },
      stepsStarted: lives.length,
      // An End or Error written twice for one Start (tolerated: "every started step ends" is at least once).
      stepsEndedTwice: lives.filter((l) => l.ends.length > 1).length,
      unendedSteps: unended,
      lostRecoveredEvents: lostRecovered,
    };
    console.log(`controller chaos summary: ${JSON.stringify(summary)}`);

    // Soft: one run reports every property it broke.
    expect.soft(ladders.size, 'ladders begun').toBeGreaterThanOrEqual(laddersWanted);
    expect.soft(firstSteps.length, 'first NodeRebootStart events').toBeGreaterThanOrEqual(laddersWanted);
    expect.soft(kills.filter((k) => k.stepsInFlight > 0).length, 'kills while a step was in flight').toBeGreaterThanOrEqual(5);
    expect.soft(perStep, 'ARM operations and POSTs per started step').toEqual([]);
    expect.soft(takeoverCheck.problems, 'Lease takeovers').toEqual([]);
    expect.soft(gauges.worst.overlapMs, `two leader gauges at 1 at once: ${gauges.worst.between}`).toBeLessThanOrEqual(gaugeOverlapToleranceMs);
    expect.soft(unended.map((u) => `${u.node}: ${u.start} at ${u.at} has no End or Error`), 'started steps without an End or Error').toEqual([]);
    expect.soft(orphanEnds, 'End or Error events without a Start').toEqual([]);
    expect.soft(h.arm.scaleSetLevelCalls(), 'scale-set-level ARM actions').toEqual([]);
  }, 300_000);
});
