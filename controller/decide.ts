import { evaluateBreaker } from './circuitBreaker.js';
import type { ControllerConfig } from './config/controllerConfig.js';
import { assessHealth, formatDuration, type Health } from './detection.js';
import type { FleetSummary } from './fleet.js';
import type { NodeFacts } from './nodeHealth.js';
import { decideQuarantine, type QuarantineDecision } from './quarantine.js';
import {
  isInFlight,
  markNeedsHuman,
  markRecovered,
  startStep,
  type RemediationState,
  type Step,
  type StoredState,
} from './remediationState.js';
import { isLeaving, nodeSkipRule, type NodeSkipRule } from './skipRules.js';

/**
 * The whole remediation policy as one pure function: (node, its stored state, the fleet, now)
 * -> what to do next. No clock, no client, no provider: the loop around it observes, writes
 * the returned state, and acts. Every decision carries a `why` for logs and events.
 */
export type SkipRule =
  | NodeSkipRule
  | 'paused'
  | 'unreadable-state'
  | 'circuit-breaker'
  | 'storm-cooldown'
  | 'max-in-flight'
  | 'min-spacing';

export type RemediationDecision =
  /** Nothing to do: healthy, or not unhealthy for long enough yet (`until`: when that changes, if known). */
  | { kind: 'none'; why: string; until?: number }
  /** A step is running or the node has time to recover; nothing to do before `until`. */
  | { kind: 'wait'; why: string; until: number }
  /**
   * Write `state` (with the Node's resourceVersion), then run `step` with the provider; `why`
   * completes "started because ...". `again`: the same step once more after an inconclusive
   * try, so the provider is asked what became of the last request before anything is sent.
   */
  | { kind: 'start'; step: Step; attempt: number; why: string; state: RemediationState; stillUnhealthyAfter?: Step; again?: boolean }
  /** The node is healthy again: write `state`; `healedBy` is the step that ended before. */
  | { kind: 'recovered'; why: string; state: RemediationState; healedBy?: Step }
  /** The ladder gives up: write `state`, tell a person. */
  | { kind: 'needs-human'; why: string; state: RemediationState; stillUnhealthyAfter?: Step }
  /** Clear the stored state. */
  | { kind: 'reset'; why: string }
  /** Another remediator (the platform) is working on this node, until `until`. */
  | { kind: 'defer'; why: string; until: number }
  /** Something should be done but a rule forbids it now (`until`: when the rule lets go, if it is a matter of time). */
  | { kind: 'skip'; rule: SkipRule; why: string; until?: number };

export interface Decision {
  remediation: RemediationDecision;
  quarantine: QuarantineDecision;
}

export function decide(node: NodeFacts, state: StoredState, fleet: FleetSummary, now: number, config: ControllerConfig): Decision {
  return { remediation: decideRemediation(node, state, fleet, now, config), quarantine: decideQuarantine(node, fleet, config) };
}

interface Context {
  node: NodeFacts;
  state: StoredState;
  fleet: FleetSummary;
  now: number;
  config: ControllerConfig;
  health: Health;
}

function decideRemediation(
  node: NodeFacts,
  state: StoredState,
  fleet: FleetSummary,
  now: number,
  config: ControllerConfig,
): RemediationDecision {
  const ctx: Context = { node, state, fleet, now, config, health: assessHealth(node, now, config.detection) };
  if (state === undefined) return newSequence(ctx);
  // A node on its way out gives its slot back at once; the cluster autoscaler deletes it anyway.
  if (state.phase !== 'unreadable' && state.phase !== 'needs-human' && isLeaving(node)) {
    return { kind: 'reset', why: `${nodeSkipRule(node, config, true)?.why ?? 'the node is leaving the cluster'}; its remediation sequence ends here` };
  }
  switch (state.phase) {
    case 'unreadable':
      return {
        kind: 'skip',
        rule: 'unreadable-state',
        why: `stored remediation state is unreadable (${state.error}); nothing is done on this node until a person fixes or removes ${config.stateAnnotation}`,
      };
    case 'needs-human':
      return afterGivingUp(ctx, state);
    case 'recovered':
      return afterRecovery(ctx, state);
    default:
      return duringSequence(ctx, state);
  }
}

/** No ladder under way: start one at reboot once the node has been unhealthy long enough. */
function newSequence(ctx: Context): RemediationDecision {
  const notYet = notYetEligible(ctx);
  if (notYet) return notYet;
  return startIfAllowed(ctx, undefined, 'reboot', 1, describeUnhealthy(ctx));
}

/** A ladder under way: a step runs, the node recovers, or the next step is due. */
function duringSequence(ctx: Context, state: RemediationState): RemediationDecision {
  const { now, config } = ctx;
  const stepTimeout = config.ladder.stepTimeoutSeconds * 1000;
  if (state.phase === 'started' && now < state.stepStartedAt + stepTimeout) {
    return { kind: 'wait', why: `${state.step} in progress since ${iso(state.stepStartedAt)}`, until: state.stepStartedAt + stepTimeout };
  }
  if (state.phase === 'failed' && state.permanent) {
    if (ctx.health.state === 'healthy') return { kind: 'recovered', why: `healthy again although ${state.step} cannot run here (${state.error})`, state: markRecovered(state, now) };
    return needsHuman(state, `${state.step} can never succeed on this node (${state.error}); nothing else is tried`, undefined);
  }
  // A start whose end was never recorded (the controller died mid-call and no leader could
  // establish the outcome) is inconclusive: it never counts as run, so it never escalates.
  if (state.phase === 'started' || state.phase === 'inconclusive') return afterInconclusive(ctx, state, stepTimeout);
  const endedAt = state.stepEndedAt ?? state.stepStartedAt;
  const completed = state.phase !== 'failed';
  if (ctx.health.state === 'healthy') {
    const decision: RemediationDecision = {
      kind: 'recovered',
      why: completed ? `healthy again after ${state.step}` : `healthy again although ${state.step} failed (${state.error})`,
      state: markRecovered(state, now),
    };
    if (completed) decision.healedBy = state.step;
    return decision;
  }
  const lastOutcome = completed ? state.step : undefined;
  const overBound = pastOverallBound(ctx, state, lastOutcome);
  if (overBound) return overBound;
  if (completed) {
    // Ready going Unknown -> False -> Unknown here is the reboot itself: the step working, not a new failure.
    const recoveredBy = endedAt + config.ladder.recoveryWaitSeconds[state.step] * 1000;
    if (now < recoveredBy) {
      return { kind: 'wait', why: `waiting for the node to recover after ${state.step} (until ${iso(recoveredBy)})`, until: recoveredBy };
    }
  }
  return nextStep(ctx, state, lastOutcome, completed ? `the node is still unhealthy after ${state.step}` : `${state.step} failed (${state.error})`);
}

/** The last try's outcome is unknown: the same step again after the retry delay, never the next one. */
function afterInconclusive(ctx: Context, state: RemediationState, stepTimeout: number): RemediationDecision {
  const { now, config } = ctx;
  const endedAt = state.phase === 'started' ? state.stepStartedAt + stepTimeout : (state.stepEndedAt ?? state.stepStartedAt);
  const what = state.phase === 'started' ? 'its outcome was never recorded' : `its outcome could not be established (${state.error})`;
  if (ctx.health.state === 'healthy') {
    return { kind: 'recovered', why: `healthy again after ${state.step} (${what})`, state: markRecovered(state, now) };
  }
  const overBound = pastOverallBound(ctx, state, undefined);
  if (overBound) return overBound;
  const retryAt = endedAt + config.ladder.retryDelaySeconds * 1000;
  if (now < retryAt) {
    return { kind: 'wait', why: `${state.step} is tried again at ${iso(retryAt)}: ${what}`, until: retryAt };
  }
  const decision = startIfAllowed(ctx, state, state.step, state.attempt, `the last ${state.step} was inconclusive (${what.replace(/^its /, 'the ')})`);
  if (decision.kind === 'start') decision.again = true;
  return decision;
}

/** Healthy after a step: clear the state after the flap window, or continue the ladder on relapse. */
function afterRecovery(ctx: Context, state: RemediationState): RemediationDecision {
  const { now, config, health } = ctx;
  const flapEnds = (state.recoveredAt ?? now) + config.ladder.flapWindowSeconds * 1000;
  if (health.state === 'healthy') {
    if (now >= flapEnds) return { kind: 'reset', why: `healthy since recovering after ${state.step}, past the flap window` };
    return { kind: 'wait', why: `recovered after ${state.step}; a relapse before ${iso(flapEnds)} continues the ladder`, until: flapEnds };
  }
  // Failing again after the window is a new story: a new sequence from reboot.
  if (health.since >= flapEnds) return newSequence({ ...ctx, state: undefined });
  const notYet = notYetEligible(ctx);
  if (notYet) return notYet;
  const overBound = pastOverallBound(ctx, state, undefined);
  if (overBound) return overBound;
  return nextStep(ctx, state, undefined, `the node relapsed within the flap window after recovering from ${state.step}`);
}

/** Gave up: nothing more until the node has been healthy for a flap window (then a clean slate). */
function afterGivingUp(ctx: Context, state: RemediationState): RemediationDecision {
  const { now, node, config, health } = ctx;
  if (health.state === 'healthy') {
    const healthyFor = now - node.readySince;
    if (healthyFor >= config.ladder.flapWindowSeconds * 1000) {
      return { kind: 'reset', why: `healthy for ${formatDuration(healthyFor)} after the ladder gave up` };
    }
    return {
      kind: 'none',
      why: `ladder gave up (${state.reason}); healthy for ${formatDuration(healthyFor)}, cleared after the flap window`,
    };
  }
  return { kind: 'none', why: `needs a human: ${state.reason}` };
}

function nextStep(ctx: Context, state: RemediationState, lastOutcome: Step | undefined, why: string): RemediationDecision {
  const { node, config } = ctx;
  let step: Step;
  let attempt = state.attempt;
  if (state.step === 'reboot') step = 'reimage';
  else if (state.step === 'reimage' && node.os === 'linux') step = 'redeploy';
  else {
    step = 'reboot';
    attempt += 1;
  }
  if (attempt > config.ladder.maxAttempts) {
    return needsHuman(
      state,
      `${why}; the reboot, reimage${node.os === 'linux' ? ', redeploy' : ''} sequence ran ${config.ladder.maxAttempts} time(s) without the node becoming healthy`,
      lastOutcome,
    );
  }
  const redeploySkipped = state.step === 'reimage' && step === 'reboot' ? ` (no redeploy: node OS is ${node.os}, not linux)` : '';
  return startIfAllowed(ctx, state, step, attempt, `${why}${redeploySkipped}`, lastOutcome);
}

function startIfAllowed(
  ctx: Context,
  previous: RemediationState | undefined,
  step: Step,
  attempt: number,
  why: string,
  stillUnhealthyAfter?: Step,
): RemediationDecision {
  const blocked = blockingRule(ctx);
  if (blocked) return blocked;
  const decision: RemediationDecision = {
    kind: 'start',
    step,
    attempt,
    why,
    state: startStep(previous, step, attempt, ctx.now),
  };
  if (stillUnhealthyAfter) decision.stillUnhealthyAfter = stillUnhealthyAfter;
  return decision;
}

/** Every rule that may forbid a start, most fundamental first. */
function blockingRule(ctx: Context): RemediationDecision | undefined {
  const { node, state, fleet, now, config } = ctx;
  if (config.paused || fleet.paused) return { kind: 'skip', rule: 'paused', why: 'the controller is paused' };
  const nodeRule = nodeSkipRule(node, config, state !== undefined);
  if (nodeRule) return { kind: 'skip', ...nodeRule };
  const platformWindow = config.platform.deferSeconds * 1000;
  if (node.platformRemediationAt !== undefined && now - node.platformRemediationAt < platformWindow) {
    return {
      kind: 'defer',
      why: `the platform is remediating this node (its event at ${iso(node.platformRemediationAt)}); deferring until ${iso(
        node.platformRemediationAt + platformWindow,
      )} so two remediators never act on one node`,
      until: node.platformRemediationAt + platformWindow,
    };
  }
  const breaker = evaluateBreaker(fleet.nodes, fleet.unhealthy, config.safety.circuitBreaker);
  if (breaker.open) return { kind: 'skip', rule: 'circuit-breaker', why: `circuit breaker open: ${breaker.why}` };
  // The cooldown holds back new sequences only: a ladder under way would lose its hour to it.
  const cooldownEnds = (fleet.stormEndedAt ?? -Infinity) + config.safety.stormCooldownSeconds * 1000;
  if (state === undefined && now < cooldownEnds) {
    return { kind: 'skip', rule: 'storm-cooldown', why: `cooling down after an unhealthy-node storm until ${iso(cooldownEnds)}`, until: cooldownEnds };
  }
  const othersInFlight = fleet.inFlight - (isInFlight(state) ? 1 : 0);
  if (!isInFlight(state) && othersInFlight >= config.safety.maxInFlight) {
    return {
      kind: 'skip',
      rule: 'max-in-flight',
      why: `${othersInFlight} remediation(s) already in flight, at most ${config.safety.maxInFlight} at a time`,
    };
  }
  const spacingEnds = (fleet.lastStartAt ?? -Infinity) + config.safety.minStartSpacingSeconds * 1000;
  if (config.safety.minStartSpacingSeconds > 0 && now < spacingEnds) {
    return {
      kind: 'skip',
      rule: 'min-spacing',
      why: `last step started at ${iso(fleet.lastStartAt ?? 0)}; next start allowed at ${iso(spacingEnds)}`,
      until: spacingEnds,
    };
  }
  return undefined;
}

/** Unhealthy, but not yet for `remediateAfterSeconds`: nothing to do, and say when. */
function notYetEligible(ctx: Context): RemediationDecision | undefined {
  const { health, now, config } = ctx;
  if (health.state === 'healthy') return { kind: 'none', why: 'healthy' };
  const startsAt = health.unhealthyAt + config.detection.remediateAfterSeconds * 1000;
  if (health.state === 'failing') {
    return {
      kind: 'none',
      why: `${health.why} for ${formatDuration(now - health.since)}; unhealthy at ${iso(health.unhealthyAt)}, remediation from ${iso(startsAt)}`,
      until: health.unhealthyAt,
    };
  }
  if (now < startsAt) {
    return {
      kind: 'none',
      why: `unhealthy (${health.why}) for ${formatDuration(now - health.unhealthyAt)}; remediation starts after ${formatDuration(
        config.detection.remediateAfterSeconds * 1000,
      )}`,
      until: startsAt,
    };
  }
  return undefined;
}

function pastOverallBound(ctx: Context, state: RemediationState, lastOutcome: Step | undefined): RemediationDecision | undefined {
  const bound = ctx.config.ladder.overallBoundSeconds * 1000;
  const elapsed = ctx.now - state.sequenceStartedAt;
  if (elapsed < bound) return undefined;
  return needsHuman(
    state,
    `still unhealthy ${formatDuration(elapsed)} after the sequence started, past its ${formatDuration(bound)} bound (last step: ${state.step})`,
    lastOutcome,
  );
}

function needsHuman(state: RemediationState, reason: string, stillUnhealthyAfter: Step | undefined): RemediationDecision {
  const decision: RemediationDecision = { kind: 'needs-human', why: reason, state: markNeedsHuman(state, reason) };
  if (stillUnhealthyAfter) decision.stillUnhealthyAfter = stillUnhealthyAfter;
  return decision;
}

function describeUnhealthy(ctx: Context): string {
  const { health, now } = ctx;
  if (health.state === 'healthy') return 'healthy';
  return `${health.why} persisted ${formatDuration(now - health.since)}, unhealthy for ${formatDuration(now - health.unhealthyAt)}`;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
