import type { CoreV1Event } from '@kubernetes/client-node';
import { controllerEventReasons, stepEventReason } from '../common/contract.js';
import { nodeEvent } from '../common/kube/nodeEvent.js';
import type { ControllerConfig } from './config/controllerConfig.js';
import type { RemediationDecision } from './decide.js';
import { formatDuration } from './detection.js';
import type { ProviderResult } from './providers/provider.js';
import type { QuarantineDecision } from './quarantine.js';
import type { Step } from './remediationState.js';

/**
 * The Events the ladder leaves on the Node, with AKS auto-repair's reasons
 * (NodeRebootStart/End/Error, NodeReimage..., NodeRedeploy...) and messages in the spirit of
 * its documentation; the provider's error code goes verbatim into every *Error event. A few
 * reasons of our own say what AKS leaves unsaid: why nothing started, and when a human is needed.
 */
export interface EventContext {
  node: { name: string; uid?: string };
  config: ControllerConfig;
  /** reportingInstance / source.host: this replica. */
  instance: string;
  now: Date;
}

/**
 * The name of a ladder event, fixed by what it is about: the node, the step's start (or the
 * sequence's), and the reason. A leader that took over and cannot tell whether its
 * predecessor wrote the event writes it again under the same name; the API server keeps one.
 */
export function ladderEventName(node: string, at: number, reason: string): string {
  // Event names are DNS subdomains (at most 253 characters); node names nearly that long are cut.
  return `${node.slice(0, 200)}.ladder-${at.toString(16)}.${reason.toLowerCase()}`;
}

type StartDecision = Extract<RemediationDecision, { kind: 'start' }>;

const stepNames: Record<Step, string> = { reboot: 'Reboot', reimage: 'Reimage', redeploy: 'Redeploy' };

export function stepStartEvent(ctx: EventContext, decision: Pick<StartDecision, 'step' | 'why' | 'attempt' | 'state'>, dryRun: boolean): CoreV1Event {
  const position =
    decision.step === 'reboot' ? 'first step of the sequence' : decision.step === 'reimage' ? 'second step of the sequence' : 'last step of the sequence';
  const message = `${stepNames[decision.step]} started because ${decision.why}; ${position} (attempt ${decision.attempt} of ${ctx.config.ladder.maxAttempts})${
    dryRun ? ' [dry run: nothing is done]' : ''
  }`;
  const reason = stepEventReason(decision.step, 'Start');
  return event(ctx, 'Normal', reason, message, ladderEventName(ctx.node.name, decision.state.stepStartedAt, reason));
}

export function stepEndEvent(ctx: EventContext, step: Step, startedAt: number, result: Extract<ProviderResult, { ok: true }>): CoreV1Event {
  const wait = formatDuration(ctx.config.ladder.recoveryWaitSeconds[step] * 1000);
  const message = `${stepNames[step]} finished: ${result.detail}. This says nothing about the node's health, which is checked over the next ${wait}`;
  const reason = stepEventReason(step, 'End');
  return event(ctx, 'Normal', reason, message, ladderEventName(ctx.node.name, startedAt, reason));
}

/**
 * The step's *Error event, with the backend's code verbatim, and what the ladder does next:
 * a failure that ran counts as the step; an inconclusive one is tried again, never escalated;
 * a permanent one hands the node to a person.
 */
export function stepErrorEvent(
  ctx: EventContext,
  step: Step,
  startedAt: number,
  failure: { code: string; message: string },
  meaning: 'failed' | 'inconclusive' | 'permanent' = 'failed',
): CoreV1Event {
  const next = {
    failed: '',
    inconclusive: `; its outcome could not be established, so the same step is tried again after ${formatDuration(
      ctx.config.ladder.retryDelaySeconds * 1000,
    )} and nothing more destructive follows from it`,
    permanent: '; this can never succeed on this node, so nothing else is tried',
  }[meaning];
  const reason = stepEventReason(step, 'Error');
  return event(ctx, 'Warning', reason, `${stepNames[step]} failed: ${failure.code}: ${failure.message}${next}`, ladderEventName(ctx.node.name, startedAt, reason));
}

export function recoveredEvent(ctx: EventContext, decision: Extract<RemediationDecision, { kind: 'recovered' }>): CoreV1Event {
  const reason = controllerEventReasons.recovered;
  // One per step that healed the node: named by that step's start.
  return event(ctx, 'Normal', reason, `Node ${decision.why}; the remediation sequence ends here`, ladderEventName(ctx.node.name, decision.state.stepStartedAt, reason));
}

export function needsHumanEvent(ctx: EventContext, decision: Extract<RemediationDecision, { kind: 'needs-human' }>): CoreV1Event {
  return event(
    ctx,
    'Warning',
    controllerEventReasons.needsHuman,
    `Auto-repair gave up: ${decision.why}. A person needs to look at this node (label ${ctx.config.needsHumanLabel}=true)`,
    ladderEventName(ctx.node.name, decision.state.sequenceStartedAt, controllerEventReasons.needsHuman),
  );
}

/** Why a needed remediation is not starting: the circuit breaker, a skip rule, a limit. */
export function heldBackEvent(ctx: EventContext, decision: Extract<RemediationDecision, { kind: 'skip' | 'defer' }>): CoreV1Event {
  if (decision.kind === 'defer') return event(ctx, 'Normal', controllerEventReasons.deferred, `Not remediating: ${decision.why}`);
  return event(ctx, 'Warning', controllerEventReasons.skipped, `Not remediating (${decision.rule}): ${decision.why}`);
}

export function quarantineEvent(ctx: EventContext, decision: Extract<QuarantineDecision, { kind: 'add' | 'remove' }>): CoreV1Event {
  const taint = `${ctx.config.quarantine.taintKey}:NoSchedule`;
  if (decision.kind === 'add') return event(ctx, 'Warning', controllerEventReasons.quarantined, `Tainted ${taint} while ${decision.why}`);
  return event(ctx, 'Normal', controllerEventReasons.quarantineLifted, `Removed taint ${taint}: ${decision.why}`);
}

function event(ctx: EventContext, type: 'Normal' | 'Warning', reason: string, message: string, name?: string): CoreV1Event {
  return nodeEvent({
    ...(name ? { name } : {}),
    node: ctx.node,
    type,
    reason,
    message,
    component: ctx.config.events.reportingComponent,
    host: ctx.config.events.reportingInstance ?? ctx.instance,
    now: ctx.now,
  });
}
