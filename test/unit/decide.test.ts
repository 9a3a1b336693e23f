import { describe, expect, it } from 'vitest';
import { controllerConfigSchema, type ControllerConfig } from '../../controller/config/controllerConfig.js';
import { decide, type RemediationDecision } from '../../controller/decide.js';
import { summariseFleet, type FleetEntry, type FleetSummary } from '../../controller/fleet.js';
import { readNode, type NodeFacts, type NodeMemory } from '../../controller/nodeHealth.js';
import { keys } from '../../common/contract.js';
import {
  endStep,
  failStep,
  inconclusiveStep,
  parseRemediationState,
  serializeRemediationState,
  type RemediationState,
  type StoredState,
} from '../../controller/remediationState.js';
import { makeNode, type NodeShape } from '../support/nodeFixtures.js';

/**
 * Walks the AKS auto-repair timeline minute by minute with a fake clock. Minute 0 is when the
 * node stops being Ready. Each tick: the node object is rebuilt as the kubelet would leave it,
 * the stored state goes through the annotation round trip, the fleet is summarised, decide()
 * runs, and its decision is applied the way the loop applies it (a provider that ends each step
 * at once unless told otherwise). The log keeps only what an operator would see happen.
 */
const T0 = Date.parse('2026-03-02T08:00:00Z');
const MIN = 60_000;
const at = (minute: number) => T0 + minute * MIN;

type Status = 'True' | 'False' | 'Unknown';
type Other = 'healthy' | 'unhealthy' | 'failing' | { unhealthyFrom?: number; unhealthyUntil: number } | 'in-flight' | 'leaving' | 'never-ready';

interface Scenario {
  minutes: number;
  config?: Record<string, unknown>;
  node?: NodeShape;
  /** Ready transitions by minute; default: False from minute 0. */
  ready?: Array<[number, 'True' | 'False' | 'Unknown']>;
  /** The node turns Ready `healDelay` minutes after the n-th step starts (1-based), or after every step. */
  healsAfterStep?: number | 'every';
  healDelay?: number;
  /** The n-th step's provider call fails with this error code (the backend ran it and it failed). */
  errors?: Record<number, string>;
  /** The n-th step's outcome could not be established (throttled, conflicting, unanswered) within its timeout. */
  inconclusive?: Record<number, string>;
  /** The n-th step can never succeed on this node (not a scale set instance, NotSupported). */
  permanent?: Record<number, string>;
  /** The node gets this taint at this minute (e.g. the cluster autoscaler starts removing it). */
  taintAt?: [number, string];
  /** The n-th step's provider call never returns (the controller died mid-call). */
  hangs?: number[];
  /** While a step runs, Ready goes Unknown (minute +1) then False (minute +3): a reboot seen from the API. */
  rebootTransitions?: boolean;
  others?: Other[];
  /** The node was never Ready before minute 0 (nobody saw it so). */
  neverReady?: boolean;
  platformEventAt?: number;
  pausedByAnnotation?: boolean;
  /** Annotation value present at minute 0. */
  annotation?: string;
}

function configWith(overrides: Record<string, unknown> = {}): ControllerConfig {
  return controllerConfigSchema.parse(overrides);
}

function otherEntry(kind: Other, index: number, now: number, config: ControllerConfig): FleetEntry {
  const name = `other-${index}`;
  let shape: NodeShape = { name, ready: 'True', readySince: at(-24 * 60), heartbeatAt: now };
  let state: StoredState;
  if (kind === 'unhealthy') shape = { name, ready: 'False', readySince: at(-60) };
  if (kind === 'failing') shape = { name, ready: 'False', readySince: now - 30_000 };
  if (typeof kind === 'object') {
    const from = kind.unhealthyFrom ?? -60;
    // Unhealthy from `from` means NotReady since notReadySeconds (10 min) before it.
    shape =
      now >= at(from) && now < at(kind.unhealthyUntil)
        ? { name, ready: 'False', readySince: at(from - 10) }
        : { name, ready: 'True', readySince: now < at(from) ? at(-24 * 60) : at(kind.unhealthyUntil), heartbeatAt: now };
  }
  if (kind === 'leaving') {
    shape = { name, ready: 'False', readySince: at(-60), taints: [{ key: 'ToBeDeletedByClusterAutoscaler', effect: 'NoSchedule' }] };
  }
  if (kind === 'never-ready') shape = { name, ready: 'False', createdAt: at(-30), readySince: at(-30) + 5_000 };
  if (kind === 'in-flight') {
    state = { step: 'reboot', phase: 'ended', attempt: 1, sequenceStartedAt: at(-30), stepStartedAt: at(-30), stepEndedAt: at(-29) };
  }
  // Every other node was Ready once, as the loop's memory would know, except a never-ready one.
  const memory = kind === 'never-ready' ? undefined : seenReady;
  const reading = readNode(makeNode(shape), { now, memory, readySeenAnnotation: keys.readySeen });
  if (!reading.ok) throw new Error(reading.error);
  return { facts: reading.facts, state };
}

/** What the loop remembers of a node it has watched while it was Ready. */
const seenReady: NodeMemory = { ready: 'True', firstSeenAt: at(-24 * 60), sawReady: true };

function describeDecision(d: RemediationDecision): string | undefined {
  switch (d.kind) {
    case 'start':
      return `start ${d.step} #${d.attempt}`;
    case 'recovered':
      return d.healedBy ? `recovered after ${d.healedBy}` : 'recovered';
    case 'needs-human':
      return 'needs-human';
    case 'reset':
      return 'reset';
    case 'defer':
      return 'defer';
    case 'skip':
      return `skip ${d.rule}`;
    default:
      return undefined;
  }
}

interface Walk {
  log: string[];
  decisions: Array<{ minute: number; decision: RemediationDecision }>;
  state: StoredState;
}

function walk(scenario: Scenario): Walk {
  const config = configWith(scenario.config);
  const others = scenario.others ?? ['healthy', 'healthy', 'healthy', 'healthy'];
  const log: string[] = [];
  const decisions: Walk['decisions'] = [];
  // Mutated through setReady, so an object rather than two narrowed `let`s.
  const readiness: { status: Status; since: number } = { status: 'True', since: at(-24 * 60) };
  let annotation: string | undefined = scenario.annotation;
  // The loop watched the node while it was Ready, unless the scenario says it never was.
  let memory: NodeMemory | undefined = scenario.neverReady ? undefined : seenReady;
  let fleetMemory: FleetSummary | undefined;
  let steps = 0;
  const healAt = new Map<number, true>();
  const transitions = new Map<number, 'Unknown' | 'False'>();
  const script = new Map<number, Status>(scenario.ready ?? [[0, 'False']]);
  let healed = false;
  const setReady = (status: Status, now: number) => {
    if (status !== readiness.status) {
      readiness.status = status;
      readiness.since = now;
    }
  };
  const record = (minute: number, line: string) => {
    const last = log.at(-1);
    const repeatsSkip = last !== undefined && last.replace(/^\d+m /, '') === line && /^(skip|defer)/.test(line);
    if (!repeatsSkip) log.push(`${minute}m ${line}`);
  };

  for (let minute = 0; minute <= scenario.minutes; minute += 1) {
    const now = at(minute);
    const scripted = script.get(minute);
    if (scripted) setReady(scripted, now);
    if (scripted === 'True') healed = true;
    if (scripted === 'False' || scripted === 'Unknown') healed = false;
    if (healAt.has(minute)) {
      setReady('True', now);
      healed = true;
    }
    const transition = transitions.get(minute);
    if (transition && !healed) setReady(transition, now);

    const tainted = scenario.taintAt !== undefined && minute >= scenario.taintAt[0];
    const nodeObject = makeNode({
      ready: readiness.status,
      readySince: readiness.since,
      heartbeatAt: readiness.status === 'Unknown' ? readiness.since : now,
      annotations: annotation === undefined ? {} : { [config.stateAnnotation]: annotation },
      ...scenario.node,
      ...(tainted ? { taints: [{ key: scenario.taintAt?.[1] ?? '', effect: 'NoSchedule' }] } : {}),
    });
    const reading = readNode(nodeObject, {
      now,
      memory,
      readySeenAnnotation: keys.readySeen,
      platformRemediationAt: scenario.platformEventAt === undefined ? undefined : at(scenario.platformEventAt),
    });
    if (!reading.ok) throw new Error(reading.error);
    memory = reading.memory;
    const facts: NodeFacts = reading.facts;
    const state = parseRemediationState(annotation);
    const entries = [{ facts, state }, ...others.map((o, i) => otherEntry(o, i, now, config))];
    const fleet = summariseFleet(entries, now, config, fleetMemory, scenario.pausedByAnnotation ?? false);
    fleetMemory = fleet;

    const { remediation } = decide(facts, state, fleet, now, config);
    decisions.push({ minute, decision: remediation });
    const line = describeDecision(remediation);
    if (line) record(minute, line);

    // What the loop writes back: only these decisions and the provider's answer touch the annotation.
    let write: RemediationState | undefined | 'keep' = 'keep';
    if (remediation.kind === 'start') {
      steps += 1;
      write = remediation.state;
      if (scenario.healsAfterStep === steps || scenario.healsAfterStep === 'every') healAt.set(minute + (scenario.healDelay ?? 2), true);
      if (scenario.rebootTransitions) {
        transitions.set(minute + 1, 'Unknown');
        transitions.set(minute + 3, 'False');
      }
      const error = scenario.errors?.[steps];
      const inconclusive = scenario.inconclusive?.[steps];
      const permanent = scenario.permanent?.[steps];
      if (error) {
        write = failStep(write, now, error);
        record(minute, `error ${remediation.step} ${error}`);
      } else if (inconclusive) {
        // The step runner gave up after the step timeout.
        write = inconclusiveStep(write, now + config.ladder.stepTimeoutSeconds * 1000, inconclusive);
        record(minute, `inconclusive ${remediation.step} ${inconclusive}`);
      } else if (permanent) {
        write = failStep(write, now, permanent, true);
        record(minute, `error ${remediation.step} ${permanent} (permanent)`);
      } else if (!scenario.hangs?.includes(steps)) {
        write = endStep(write, now);
        record(minute, `end ${remediation.step}`);
      }
    }
    if (remediation.kind === 'recovered' || remediation.kind === 'needs-human') write = remediation.state;
    if (remediation.kind === 'reset') write = undefined;
    if (write !== 'keep') annotation = write === undefined ? undefined : serializeRemediationState(write);
  }
  return { log, decisions, state: parseRemediationState(annotation) };
}

describe('the AKS timeline, minute by minute', () => {
  const cases: Array<[string, Scenario, string[]]> = [
    [
      'a node that recovers after the reboot stops there, and its state clears after the flap window',
      { minutes: 60, healsAfterStep: 1 },
      ['15m start reboot #1', '15m end reboot', '17m recovered after reboot', '47m reset'],
    ],
    [
      'a node that recovers after the reimage stops there',
      { minutes: 30, healsAfterStep: 2 },
      ['15m start reboot #1', '15m end reboot', '20m start reimage #1', '20m end reimage', '22m recovered after reimage'],
    ],
    [
      'a node that recovers after the redeploy stops there',
      { minutes: 40, healsAfterStep: 3 },
      [
        '15m start reboot #1',
        '15m end reboot',
        '20m start reimage #1',
        '20m end reimage',
        '30m start redeploy #1',
        '30m end redeploy',
        '32m recovered after redeploy',
      ],
    ],
    [
      'a node that never recovers is given up on at the one-hour bound, and nothing more happens',
      { minutes: 150 },
      [
        '15m start reboot #1',
        '15m end reboot',
        '20m start reimage #1',
        '20m end reimage',
        '30m start redeploy #1',
        '30m end redeploy',
        '40m start reboot #2',
        '40m end reboot',
        '45m start reimage #2',
        '45m end reimage',
        '55m start redeploy #2',
        '55m end redeploy',
        '65m start reboot #3',
        '65m end reboot',
        '70m start reimage #3',
        '70m end reimage',
        '75m needs-human',
      ],
    ],
    [
      'with a longer bound, the sequence runs three full times and then needs a human',
      { minutes: 200, config: { ladder: { overallBoundSeconds: 4 * 3600 } } },
      [
        '15m start reboot #1',
        '15m end reboot',
        '20m start reimage #1',
        '20m end reimage',
        '30m start redeploy #1',
        '30m end redeploy',
        '40m start reboot #2',
        '40m end reboot',
        '45m start reimage #2',
        '45m end reimage',
        '55m start redeploy #2',
        '55m end redeploy',
        '65m start reboot #3',
        '65m end reboot',
        '70m start reimage #3',
        '70m end reimage',
        '80m start redeploy #3',
        '80m end redeploy',
        '90m needs-human',
      ],
    ],
    [
      'a Windows node never gets a redeploy: reboot and reimage, three times',
      { minutes: 90, node: { os: 'windows' } },
      [
        '15m start reboot #1',
        '15m end reboot',
        '20m start reimage #1',
        '20m end reimage',
        '30m start reboot #2',
        '30m end reboot',
        '35m start reimage #2',
        '35m end reimage',
        '45m start reboot #3',
        '45m end reboot',
        '50m start reimage #3',
        '50m end reimage',
        '60m needs-human',
      ],
    ],
    [
      'Ready going Unknown then False during our own reboot is the reboot working, not a new failure',
      { minutes: 32, rebootTransitions: true },
      [
        '15m start reboot #1',
        '15m end reboot',
        '20m start reimage #1',
        '20m end reimage',
        '30m start redeploy #1',
        '30m end redeploy',
      ],
    ],
    [
      'a failed reboot (provider error) goes on to the reimage after the minimum spacing, without a recovery wait',
      { minutes: 20, errors: { 1: 'AuthorizationFailed' } },
      ['15m start reboot #1', '15m error reboot AuthorizationFailed', '16m skip min-spacing', '17m start reimage #1', '17m end reimage'],
    ],
    [
      'a failed reimage goes on to the redeploy',
      { minutes: 25, errors: { 2: 'VMReimageFailed' } },
      [
        '15m start reboot #1',
        '15m end reboot',
        '20m start reimage #1',
        '20m error reimage VMReimageFailed',
        '21m skip min-spacing',
        '22m start redeploy #1',
        '22m end redeploy',
      ],
    ],
    [
      'a failed redeploy goes on to the next pass at reboot',
      { minutes: 35, errors: { 3: 'InternalServerError' } },
      [
        '15m start reboot #1',
        '15m end reboot',
        '20m start reimage #1',
        '20m end reimage',
        '30m start redeploy #1',
        '30m error redeploy InternalServerError',
        '31m skip min-spacing',
        '32m start reboot #2',
        '32m end reboot',
      ],
    ],
    [
      'a step whose end was never recorded (controller died) never escalates: after the step timeout the same step is tried again (inspecting first)',
      { minutes: 40, hangs: [1] },
      ['15m start reboot #1', '31m start reboot #1', '31m end reboot', '36m start reimage #1', '36m end reimage'],
    ],
    [
      'a reboot that stayed throttled or conflicting through its timeout is tried again, never followed by a reimage',
      { minutes: 60, inconclusive: { 1: 'OperationNotAllowed', 2: 'TooManyRequests' } },
      [
        '15m start reboot #1',
        '15m inconclusive reboot OperationNotAllowed',
        '31m start reboot #1',
        '31m inconclusive reboot TooManyRequests',
        '47m start reboot #1',
        '47m end reboot',
        '52m start reimage #1',
        '52m end reimage',
      ],
    ],
    [
      'a step that can never succeed on this node hands it to a person at once: one error, no other step',
      { minutes: 40, permanent: { 1: 'NotAScaleSetInstance' } },
      ['15m start reboot #1', '15m error reboot NotAScaleSetInstance (permanent)', '16m needs-human'],
    ],
    [
      'a node the cluster autoscaler starts removing mid-ladder ends its ladder and frees its slot at once',
      { minutes: 30, taintAt: [17, 'ToBeDeletedByClusterAutoscaler'] },
      ['15m start reboot #1', '15m end reboot', '17m reset', '18m skip to-be-deleted'],
    ],
    [
      'a node that fails again within the flap window continues its ladder at reimage',
      {
        minutes: 50,
        healsAfterStep: 1,
        ready: [
          [0, 'False'],
          [30, 'False'],
        ],
      },
      ['15m start reboot #1', '15m end reboot', '17m recovered after reboot', '45m start reimage #1', '45m end reimage'],
    ],
    [
      'a node that fails again after the flap window starts over at reboot',
      {
        minutes: 66,
        healsAfterStep: 1,
        ready: [
          [0, 'False'],
          [50, 'False'],
        ],
      },
      ['15m start reboot #1', '15m end reboot', '17m recovered after reboot', '47m reset', '65m start reboot #1', '65m end reboot'],
    ],
    [
      'a node with the cloud provider shutdown taint is never remediated',
      { minutes: 30, node: { taints: [{ key: 'node.cloudprovider.kubernetes.io/shutdown', effect: 'NoSchedule' }] } },
      ['15m skip shutdown-taint'],
    ],
    [
      'a node the cluster autoscaler is deleting is never remediated',
      { minutes: 30, node: { taints: [{ key: 'ToBeDeletedByClusterAutoscaler', value: '1700000000', effect: 'NoSchedule' }] } },
      ['15m skip to-be-deleted'],
    ],
    [
      'a node opted out by label is never remediated',
      { minutes: 30, node: { labels: { 'nodepulse.io/remediation': 'disabled' } } },
      ['15m skip opted-out'],
    ],
    [
      'a node that never became Ready after registering is never remediated',
      { minutes: 30, node: { createdAt: at(0) - 2_000 }, neverReady: true },
      ['15m skip never-ready'],
    ],
    [
      'nothing is remediated while the controller is paused in its config',
      { minutes: 30, config: { paused: true } },
      ['15m skip paused'],
    ],
    [
      'nothing is remediated while the controller is paused by annotation',
      { minutes: 30, pausedByAnnotation: true },
      ['15m skip paused'],
    ],
    [
      'a node the platform is already repairing (aks-auto-repair event in the last hour) is deferred to it',
      { minutes: 66, platformEventAt: 5 },
      ['15m defer', '65m start reboot #1', '65m end reboot'],
    ],
    [
      'with 3 of 5 nodes unhealthy nothing starts (circuit breaker)',
      { minutes: 30, others: ['unhealthy', 'unhealthy', 'healthy', 'healthy'] },
      ['15m skip circuit-breaker'],
    ],
    [
      'after the storm ends, nothing starts until the cooldown has passed',
      { minutes: 36, others: [{ unhealthyUntil: 20 }, { unhealthyUntil: 20 }, 'healthy', 'healthy'] },
      ['15m skip circuit-breaker', '20m skip storm-cooldown', '35m start reboot #1', '35m end reboot'],
    ],
    [
      'in a 3-node pool one unhealthy node is repaired',
      { minutes: 16, others: ['healthy', 'healthy'] },
      ['15m start reboot #1', '15m end reboot'],
    ],
    [
      'in a 3-node pool two unhealthy nodes are not',
      { minutes: 16, others: ['unhealthy', 'healthy'] },
      ['15m skip circuit-breaker'],
    ],
    [
      'a single-node pool is repaired by default, as AKS repairs it',
      { minutes: 16, others: [] },
      ['15m start reboot #1', '15m end reboot'],
    ],
    [
      'a single-node pool is held when safety.circuitBreaker.repairSingleNode is off',
      { minutes: 30, others: [], config: { safety: { circuitBreaker: { repairSingleNode: false } } } },
      ['15m skip circuit-breaker'],
    ],
    [
      'a kubelet blip on other nodes (NotReady for a moment, not unhealthy) does not open the breaker of a small pool',
      { minutes: 16, others: ['failing', 'failing'] },
      ['15m start reboot #1', '15m end reboot'],
    ],
    [
      'a storm that ends mid-ladder does not hold the ladder under way: the cooldown holds back new sequences only',
      { minutes: 21, others: [{ unhealthyFrom: 16, unhealthyUntil: 19 }, { unhealthyFrom: 16, unhealthyUntil: 19 }, 'healthy', 'healthy'] },
      ['15m start reboot #1', '15m end reboot', '20m start reimage #1', '20m end reimage'],
    ],
    [
      'nodes leaving the cluster or never Ready do not count toward the circuit breaker',
      { minutes: 16, others: ['leaving', 'leaving', 'never-ready', 'never-ready', 'healthy', 'healthy'] },
      ['15m start reboot #1', '15m end reboot'],
    ],
    [
      'with another remediation in flight and the default of 1, a second node waits its turn',
      { minutes: 20, others: ['in-flight', 'healthy', 'healthy', 'healthy', 'healthy', 'healthy'] },
      ['15m skip max-in-flight'],
    ],
    [
      'with max in flight 2, a second node starts while another is in flight',
      {
        minutes: 16,
        config: { safety: { maxInFlight: 2 } },
        others: ['in-flight', 'healthy', 'healthy', 'healthy', 'healthy', 'healthy'],
      },
      ['15m start reboot #1', '15m end reboot'],
    ],
    [
      'a malformed state annotation is never acted on and never overwritten',
      { minutes: 30, annotation: '{"v":1,"step":"reboot","phase":"started"' },
      ['0m skip unreadable-state'],
    ],
  ];

  it.each(cases)('%s', (_name, scenario, expected) => {
    expect(walk(scenario).log).toEqual(expected);
  });
});

/** One decision at an exact instant, for the thresholds the minute walk cannot resolve. */
function decideAt(
  shape: NodeShape,
  now: number,
  overrides: Record<string, unknown> = {},
  state?: StoredState,
  /** null: the loop never saw this node Ready. */
  memory: NodeMemory | null = seenReady,
): RemediationDecision {
  const config = configWith(overrides);
  const reading = readNode(makeNode(shape), { now, memory: memory ?? undefined, readySeenAnnotation: keys.readySeen });
  if (!reading.ok) throw new Error(reading.error);
  const healthy = (i: number) => otherEntry('healthy', i, now, config);
  const fleet = summariseFleet([{ facts: reading.facts, state }, healthy(1), healthy(2), healthy(3), healthy(4)], now, config, undefined, false);
  return decide(reading.facts, state, fleet, now, config).remediation;
}

describe('detection thresholds, to the second', () => {
  const S = 1000;
  it.each([
    ['Ready=False for 14m59s (unhealthy for 4m59s) does nothing', { ready: 'False', readySince: at(0) }, at(14) + 59 * S, 'none'],
    ['Ready=False for 15m (unhealthy for 5m) starts the reboot', { ready: 'False', readySince: at(0) }, at(15), 'start'],
    ['Ready=False for 9m59s is not unhealthy yet', { ready: 'False', readySince: at(0) }, at(9) + 59 * S, 'none'],
    ['Ready=Unknown (no status) for 15m starts the reboot', { ready: 'Unknown', readySince: at(0) }, at(15), 'start'],
    [
      'a heartbeat 14m59s old on a node still marked Ready does nothing',
      { ready: 'True', readySince: at(-60), heartbeatAt: at(0) },
      at(14) + 59 * S,
      'none',
    ],
    ['a heartbeat 15m old on a node still marked Ready starts the reboot', { ready: 'True', readySince: at(-60), heartbeatAt: at(0) }, at(15), 'start'],
    ['a Ready node with a fresh heartbeat is healthy', { ready: 'True', readySince: at(-60), heartbeatAt: at(15) }, at(15), 'none'],
  ] as const)('%s', (_name, shape, now, kind) => {
    expect(decideAt({ ...shape }, now).kind).toBe(kind);
  });

  it('says how long the node has been unhealthy and when remediation starts', () => {
    const decision = decideAt({ ready: 'False', readySince: at(0) }, at(14) + 59_000);
    expect(decision).toMatchObject({ kind: 'none', why: 'unhealthy (Ready=False) for 4m59s; remediation starts after 5m' });
  });

  it('a configured agent condition True for its duration makes a Ready node unhealthy', () => {
    const shape: NodeShape = { ready: 'True', readySince: at(-60), heartbeatAt: at(10), conditions: { KonnectivityProblem: ['True', at(0)] } };
    const config = { detection: { agentConditions: [{ type: 'KonnectivityProblem', forSeconds: 300 }] } };
    expect(decideAt({ ...shape, heartbeatAt: at(9) }, at(9) + 59_000, config).kind).toBe('none');
    expect(decideAt(shape, at(10), config)).toMatchObject({ kind: 'start', step: 'reboot', why: expect.stringContaining('KonnectivityProblem=True') });
  });

  it('an agent condition that is not configured never triggers a remediation', () => {
    const shape: NodeShape = { ready: 'True', readySince: at(-60), heartbeatAt: at(60), conditions: { KonnectivityProblem: ['True', at(0)] } };
    expect(decideAt(shape, at(60))).toEqual({ kind: 'none', why: 'healthy' });
  });

  it('a node opted out by annotation is never remediated', () => {
    const decision = decideAt({ ready: 'False', readySince: at(0), annotations: { 'nodepulse.io/remediation': 'disabled' } }, at(15));
    expect(decision).toMatchObject({ kind: 'skip', rule: 'opted-out' });
  });
});

describe('giving up and what follows', () => {
  it('records why a human is needed on the node and in the decision', () => {
    const { decisions, state } = walk({ minutes: 80 });
    const gaveUp = decisions.find((d) => d.decision.kind === 'needs-human');
    expect(gaveUp?.minute).toBe(75);
    expect(gaveUp?.decision.why).toContain('past its 1h bound (last step: reimage)');
    expect(state).toMatchObject({ phase: 'needs-human', attempt: 3, step: 'reimage', reason: expect.stringContaining('1h bound') });
  });

  it('a node given up on that recovers by itself is cleared after a flap window of health, not before', () => {
    const ready: Scenario['ready'] = [
      [0, 'False'],
      [100, 'True'],
    ];
    expect(walk({ minutes: 129, ready }).log.at(-1)).toBe('75m needs-human');
    expect(walk({ minutes: 130, ready }).log.at(-1)).toBe('130m reset');
  });

  it('a node that keeps relapsing within the flap window walks its ladder once and is given up on: it never loops', () => {
    // Heals 2 minutes after every step and fails again 22 minutes after the last failure.
    const ready: Scenario['ready'] = [0, 22, 44, 66, 88].map((m) => [m, 'False']);
    expect(walk({ minutes: 120, ready, healsAfterStep: 'every' }).log).toEqual([
      '15m start reboot #1',
      '15m end reboot',
      '17m recovered after reboot',
      '37m start reimage #1',
      '37m end reimage',
      '39m recovered after reimage',
      '59m start redeploy #1',
      '59m end redeploy',
      '61m recovered after redeploy',
      '81m needs-human',
    ]);
  });

  it('a malformed state annotation stays as it was: nobody overwrites what they cannot read', () => {
    const annotation = '{"v":1,"step":"reboot","phase":"started"';
    const { state } = walk({ minutes: 30, annotation });
    expect(state).toEqual({ phase: 'unreadable', error: expect.stringContaining('not JSON') });
  });
});

describe('what a start says', () => {
  it('the first reboot says what persisted and for how long', () => {
    expect(decideAt({ ready: 'False', readySince: at(0) }, at(15))).toMatchObject({
      kind: 'start',
      step: 'reboot',
      attempt: 1,
      why: 'Ready=False persisted 15m, unhealthy for 5m',
    });
  });
});

describe('a replica that takes over', () => {
  it('continues a ladder on a node it never saw Ready, instead of taking it for a never-ready node', () => {
    // Created 2 s before it went NotReady: from the Node alone it looks like it never was Ready.
    const shape: NodeShape = { ready: 'False', createdAt: at(0) - 2_000, readySince: at(0) };
    const ended: RemediationState = { step: 'reboot', phase: 'ended', attempt: 1, sequenceStartedAt: at(15), stepStartedAt: at(15), stepEndedAt: at(15) };
    expect(decideAt(shape, at(20), {}, ended, null)).toMatchObject({ kind: 'start', step: 'reimage' });
    expect(decideAt(shape, at(20), {}, undefined, null)).toMatchObject({ kind: 'skip', rule: 'never-ready' });
  });

  it('repairs a node an earlier replica saw Ready (the ready-seen annotation), though it never saw it so itself', () => {
    const shape: NodeShape = { ready: 'False', readySince: at(0), annotations: { [keys.readySeen]: new Date(at(-1)).toISOString() } };
    expect(decideAt(shape, at(15), {}, undefined, null)).toMatchObject({ kind: 'start', step: 'reboot' });
  });
});

describe('the never-ready rule does not depend on when the first status arrived', () => {
  it.each([
    ['the first status arrived at registration', 0],
    ['the first status arrived 5 minutes after registration', 5],
    ['the first status arrived 30 minutes after registration', 30],
  ])('a node whose Ready was never True is skipped when %s', (_name, delay) => {
    const shape: NodeShape = { ready: 'False', createdAt: at(-40), readySince: at(-40 + delay) };
    expect(decideAt(shape, at(20), {}, undefined, null)).toMatchObject({ kind: 'skip', rule: 'never-ready' });
  });
});
