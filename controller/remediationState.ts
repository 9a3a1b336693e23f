import { z } from 'zod';

/**
 * A node's remediation state, stored as JSON in an annotation on the Node itself so that a
 * restarted or failed-over controller resumes the ladder where it stood. The loop writes it
 * with the Node's resourceVersion *before* acting, which is what makes a step start at most
 * once.
 */
export const STEPS = ['reboot', 'reimage', 'redeploy'] as const;
export type Step = (typeof STEPS)[number];

export type Phase =
  /** The step was recorded and handed to the provider; its end is not recorded yet. */
  | 'started'
  /** The provider finished the step; the node has its recovery wait to become healthy. */
  | 'ended'
  /** The provider reported an error; `error` holds its code verbatim, `permanent` when it can never succeed here. */
  | 'failed'
  /**
   * The step's outcome could not be established within its timeout (throttled, another
   * operation in progress, no answer): it does not count as run, and is tried again.
   */
  | 'inconclusive'
  /** The node became healthy after `step`; kept for the flap window, then cleared. */
  | 'recovered'
  /** The ladder gave up; nothing more is done until the node recovers or a person acts. */
  | 'needs-human';

export interface RemediationState {
  step: Step;
  phase: Phase;
  /** Pass through the ladder, from 1. */
  attempt: number;
  /** Epoch ms; the overall bound runs from here. */
  sequenceStartedAt: number;
  stepStartedAt: number;
  stepEndedAt?: number;
  error?: string;
  /** With phase failed: the error can never succeed on this node (not a scale set instance, NotSupported). */
  permanent?: boolean;
  recoveredAt?: number;
  /** Why a human is needed. */
  reason?: string;
}

/** An annotation we cannot trust: never acted on, never overwritten blindly. */
export interface UnreadableState {
  phase: 'unreadable';
  error: string;
}

export type StoredState = RemediationState | UnreadableState | undefined;

export const STATE_VERSION = 1;
const MAX_ANNOTATION_BYTES = 4096;

const isoTime = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));

const wireSchema = z.strictObject({
  v: z.literal(STATE_VERSION, { error: `must be ${STATE_VERSION}; a newer nodepulse may have written this` }),
  step: z.enum(STEPS),
  phase: z.enum(['started', 'ended', 'failed', 'inconclusive', 'recovered', 'needs-human']),
  attempt: z.number().int().min(1).max(100),
  sequenceStartedAt: isoTime,
  stepStartedAt: isoTime,
  stepEndedAt: isoTime.optional(),
  error: z.string().max(512).optional(),
  permanent: z.literal(true).optional(),
  recoveredAt: isoTime.optional(),
  reason: z.string().max(1024).optional(),
});

/** Reads the annotation; anything but a well-formed, self-consistent state is `unreadable`. */
export function parseRemediationState(value: string | undefined): StoredState {
  if (value === undefined || value === '') return undefined;
  if (Buffer.byteLength(value) > MAX_ANNOTATION_BYTES) {
    return { phase: 'unreadable', error: `longer than ${MAX_ANNOTATION_BYTES} bytes` };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(value);
  } catch (err) {
    return { phase: 'unreadable', error: `not JSON (${(err as Error).message})` };
  }
  const parsed = wireSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue && issue.path.length > 0 ? issue.path.join('.') : '(top level)';
    return { phase: 'unreadable', error: `${field}: ${issue?.message ?? 'invalid'}` };
  }
  const { v: _version, ...state } = parsed.data;
  const inconsistency = checkConsistency(state);
  return inconsistency ? { phase: 'unreadable', error: inconsistency } : state;
}

function checkConsistency(s: RemediationState): string | undefined {
  if (s.stepStartedAt < s.sequenceStartedAt) return 'stepStartedAt is before sequenceStartedAt';
  if (s.stepEndedAt !== undefined && s.stepEndedAt < s.stepStartedAt) return 'stepEndedAt is before stepStartedAt';
  if ((s.phase === 'ended' || s.phase === 'failed' || s.phase === 'inconclusive') && s.stepEndedAt === undefined) {
    return `phase ${s.phase} needs stepEndedAt`;
  }
  if ((s.phase === 'failed' || s.phase === 'inconclusive') && s.error === undefined) return `phase ${s.phase} needs error`;
  if (s.permanent && s.phase !== 'failed') return 'permanent needs phase failed';
  if (s.phase === 'recovered' && s.recoveredAt === undefined) return 'phase recovered needs recoveredAt';
  if (s.phase === 'needs-human' && s.reason === undefined) return 'phase needs-human needs reason';
  return undefined;
}

export function serializeRemediationState(state: RemediationState): string {
  const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
  return JSON.stringify({
    v: STATE_VERSION,
    step: state.step,
    phase: state.phase,
    attempt: state.attempt,
    sequenceStartedAt: iso(state.sequenceStartedAt),
    stepStartedAt: iso(state.stepStartedAt),
    stepEndedAt: iso(state.stepEndedAt),
    error: state.error,
    permanent: state.permanent,
    recoveredAt: iso(state.recoveredAt),
    reason: state.reason,
  });
}

/** A sequence under way occupies one of the in-flight slots; so does a state we cannot read. */
export function isInFlight(state: StoredState): boolean {
  if (state === undefined) return false;
  return state.phase === 'started' || state.phase === 'ended' || state.phase === 'failed' || state.phase === 'inconclusive' || state.phase === 'unreadable';
}

export function startStep(previous: RemediationState | undefined, step: Step, attempt: number, now: number): RemediationState {
  return { step, phase: 'started', attempt, sequenceStartedAt: previous?.sequenceStartedAt ?? now, stepStartedAt: now };
}

export function endStep(state: RemediationState, now: number): RemediationState {
  return { ...withoutOutcome(state), phase: 'ended', stepEndedAt: now };
}

export function failStep(state: RemediationState, now: number, errorCode: string, permanent = false): RemediationState {
  return { ...withoutOutcome(state), phase: 'failed', stepEndedAt: now, error: errorCode, ...(permanent ? { permanent: true } : {}) };
}

export function inconclusiveStep(state: RemediationState, now: number, errorCode: string): RemediationState {
  return { ...withoutOutcome(state), phase: 'inconclusive', stepEndedAt: now, error: errorCode };
}

export function markRecovered(state: RemediationState, now: number): RemediationState {
  return { ...withoutOutcome(state), phase: 'recovered', recoveredAt: now, ...keepEnd(state) };
}

export function markNeedsHuman(state: RemediationState, reason: string): RemediationState {
  return { ...withoutOutcome(state), phase: 'needs-human', reason, ...keepEnd(state) };
}

function withoutOutcome(s: RemediationState): RemediationState {
  return { step: s.step, phase: s.phase, attempt: s.attempt, sequenceStartedAt: s.sequenceStartedAt, stepStartedAt: s.stepStartedAt };
}

function keepEnd(s: RemediationState): Pick<RemediationState, 'stepEndedAt' | 'error'> {
  const kept: Pick<RemediationState, 'stepEndedAt' | 'error'> = {};
  if (s.stepEndedAt !== undefined) kept.stepEndedAt = s.stepEndedAt;
  if (s.error !== undefined) kept.error = s.error;
  return kept;
}
