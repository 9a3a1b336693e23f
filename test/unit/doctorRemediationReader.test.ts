import { describe, expect, it } from 'vitest';
import {
  endStep,
  failStep,
  inconclusiveStep,
  markNeedsHuman,
  markRecovered,
  serializeRemediationState,
  startStep,
  type RemediationState,
} from '../../controller/remediationState.js';
import { readLadderPosition } from '../../tools/doctor/remediationReader.js';

/**
 * The doctor reads the controller's state annotation with a reader of its own (it may import
 * nothing from controller/). This feeds it what the controller writes, in every phase, so a
 * change of the annotation's shape fails here before it reaches an operator.
 */
const t0 = Date.parse('2026-12-01T10:00:00Z');
const started = startStep(undefined, 'reimage', 2, t0);
const phases: Array<[string, RemediationState, string | undefined]> = [
  ['started', started, undefined],
  ['ended', endStep(started, t0 + 60_000), undefined],
  ['failed', failStep(started, t0 + 60_000, 'AuthorizationFailed', true), 'AuthorizationFailed'],
  ['inconclusive', inconclusiveStep(started, t0 + 60_000, 'OperationNotAllowed'), 'OperationNotAllowed'],
  ['recovered', markRecovered(endStep(started, t0 + 60_000), t0 + 120_000), undefined],
  ['needs-human', markNeedsHuman(endStep(started, t0 + 60_000), 'the sequence ran 3 time(s)'), 'the sequence ran 3 time(s)'],
];

describe("the doctor's reader of the controller's remediation state", () => {
  it.each(phases)('reads phase %s as the controller wrote it', (phase, state, detail) => {
    const read = readLadderPosition(serializeRemediationState(state));
    expect(read).toEqual({
      step: 'reimage',
      phase,
      attempt: 2,
      stepStartedAt: t0,
      ...(state.stepEndedAt !== undefined ? { stepEndedAt: state.stepEndedAt } : {}),
      ...(detail !== undefined ? { detail } : {}),
    });
  });

  it('says unreadable, naming what, rather than guessing', () => {
    expect(readLadderPosition('{')).toEqual({ unreadable: 'not JSON' });
    expect(readLadderPosition(JSON.stringify({ v: 2, step: 'reboot' }))).toEqual({ unreadable: 'version 2, this doctor reads 1' });
    expect(readLadderPosition(JSON.stringify({ v: 1, step: 'reboot', phase: 'started', attempt: 1, stepStartedAt: 'yesterday' }))).toEqual({ unreadable: 'stepStartedAt is not a time' });
    expect(readLadderPosition(undefined)).toBeUndefined();
  });
});
