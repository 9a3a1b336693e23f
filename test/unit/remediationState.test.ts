import { describe, expect, it } from 'vitest';
import {
  endStep,
  failStep,
  isInFlight,
  markNeedsHuman,
  markRecovered,
  parseRemediationState,
  serializeRemediationState,
  startStep,
} from '../../controller/remediationState.js';

const T = Date.parse('2026-03-02T08:15:00Z');

describe('the remediation state annotation', () => {
  it('survives the round trip through the annotation at every phase', () => {
    const started = startStep(undefined, 'reboot', 1, T);
    const states = [
      started,
      endStep(started, T + 60_000),
      failStep(startStep(started, 'reimage', 1, T + 300_000), T + 360_000, 'AuthorizationFailed'),
      markRecovered(endStep(started, T + 60_000), T + 120_000),
      markNeedsHuman(endStep(started, T + 60_000), 'past its 1h bound'),
    ];
    for (const state of states) expect(parseRemediationState(serializeRemediationState(state))).toEqual(state);
  });

  it('a later step keeps the sequence start, so the overall bound runs from the first step', () => {
    const first = startStep(undefined, 'reboot', 1, T);
    expect(startStep(endStep(first, T + 1), 'reimage', 1, T + 600_000)).toMatchObject({ sequenceStartedAt: T, stepStartedAt: T + 600_000 });
  });

  it('no annotation means no state', () => {
    expect(parseRemediationState(undefined)).toBeUndefined();
    expect(parseRemediationState('')).toBeUndefined();
  });

  const valid = JSON.parse(serializeRemediationState(endStep(startStep(undefined, 'reboot', 1, T), T + 1000))) as Record<string, unknown>;
  it.each([
    ['text that is not JSON', 'reboot please', 'not JSON'],
    ['a state from a newer nodepulse', JSON.stringify({ ...valid, v: 2 }), 'v: must be 1; a newer nodepulse may have written this'],
    ['an unknown step', JSON.stringify({ ...valid, step: 'reinstall' }), 'step:'],
    ['an unknown field', JSON.stringify({ ...valid, extra: 1 }), '(top level)'],
    ['a timestamp that is not RFC 3339', JSON.stringify({ ...valid, stepStartedAt: 'yesterday' }), 'stepStartedAt:'],
    ['an attempt of 0', JSON.stringify({ ...valid, attempt: 0 }), 'attempt:'],
    ['a step that ended before it started', JSON.stringify({ ...valid, stepEndedAt: '2026-03-02T08:00:00Z' }), 'stepEndedAt is before stepStartedAt'],
    ['an ended step without its end time', JSON.stringify({ ...valid, stepEndedAt: undefined }), 'phase ended needs stepEndedAt'],
    ['a failed step without its error code', JSON.stringify({ ...valid, phase: 'failed' }), 'phase failed needs error'],
    ['a value too long to be ours', `{"pad":"${'x'.repeat(5000)}"}`, 'longer than 4096 bytes'],
    ['a JSON array', '[]', '(top level)'],
  ])('%s is unreadable, with the field named', (_name, value, error) => {
    const parsed = parseRemediationState(value);
    expect(parsed).toEqual({ phase: 'unreadable', error: expect.stringContaining(error) });
  });

  it('an unreadable state holds an in-flight slot, so a stranger\'s half-written state cannot free one', () => {
    expect(isInFlight({ phase: 'unreadable', error: 'x' })).toBe(true);
    expect(isInFlight(undefined)).toBe(false);
    const started = startStep(undefined, 'reboot', 1, T);
    expect(isInFlight(started)).toBe(true);
    expect(isInFlight(markRecovered(endStep(started, T), T))).toBe(false);
    expect(isInFlight(markNeedsHuman(started, 'why'))).toBe(false);
  });
});
