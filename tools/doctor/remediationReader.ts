/**
 * A read-only reader of the controller's remediation state annotation (keys.remediationState),
 * enough to say where a node stands on the ladder. The controller's own parser
 * (controller/remediationState.ts) validates far more because it acts on the state; the doctor
 * only shows it, so it reads the fields it shows and says "unreadable" about anything else.
 * test/unit/doctorRemediationReader.test.ts feeds it the controller's serializer's output for
 * every phase and fails if the shape drifts.
 */
export interface LadderPosition {
  step: string;
  phase: string;
  attempt: number;
  /** Epoch ms. */
  stepStartedAt: number;
  stepEndedAt?: number;
  /** The provider's error code (failed, inconclusive) or why a human is needed (needs-human). */
  detail?: string;
}

export type LadderReading = LadderPosition | { unreadable: string } | undefined;

const supportedVersion = 1;
const steps: readonly string[] = ['reboot', 'reimage', 'redeploy'];
const phases: readonly string[] = ['started', 'ended', 'failed', 'inconclusive', 'recovered', 'needs-human'];

export function readLadderPosition(annotation: string | undefined): LadderReading {
  if (annotation === undefined || annotation === '') return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(annotation);
  } catch {
    return { unreadable: 'not JSON' };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { unreadable: 'not a JSON object' };
  const state = raw as Record<string, unknown>;
  if (state.v !== supportedVersion) return { unreadable: `version ${JSON.stringify(state.v)}, this doctor reads ${supportedVersion}` };
  const { step, phase, attempt } = state;
  if (typeof step !== 'string' || !steps.includes(step)) return { unreadable: `step ${JSON.stringify(step)}` };
  if (typeof phase !== 'string' || !phases.includes(phase)) return { unreadable: `phase ${JSON.stringify(phase)}` };
  if (typeof attempt !== 'number' || !Number.isInteger(attempt) || attempt < 1) return { unreadable: `attempt ${JSON.stringify(attempt)}` };
  const stepStartedAt = time(state.stepStartedAt);
  if (stepStartedAt === undefined) return { unreadable: 'stepStartedAt is not a time' };
  const position: LadderPosition = { step, phase, attempt, stepStartedAt };
  const stepEndedAt = time(state.stepEndedAt);
  if (stepEndedAt !== undefined) position.stepEndedAt = stepEndedAt;
  const detail = phase === 'needs-human' ? state.reason : state.error;
  if (typeof detail === 'string') position.detail = detail;
  return position;
}

function time(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}
