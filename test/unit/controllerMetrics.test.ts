import { describe, expect, it } from 'vitest';
import { ControllerMetrics } from '../../controller/metrics.js';

describe('controller metrics', () => {
  it('count steps started, succeeded and failed by step, and show the circuit breaker', async () => {
    const metrics = new ControllerMetrics(false);
    metrics.stepStarted('reboot', 'azure');
    metrics.stepStarted('reimage', 'azure');
    metrics.stepFailed('reboot', 'still_unhealthy');
    metrics.stepFailed('reimage', 'provider_error');
    metrics.stepSucceeded('reimage');
    metrics.neededHuman();
    metrics.observeFleet({ nodes: 5, unhealthy: 3, quarantineWanted: 0, inFlight: 1, breakerOpen: true, paused: false });
    const text = await metrics.text();
    expect(text).toContain('nodepulse_remediation_steps_started_total{step="reboot",provider="azure"} 1');
    expect(text).toContain('nodepulse_remediation_steps_started_total{step="reimage",provider="azure"} 1');
    expect(text).toContain('nodepulse_remediation_steps_succeeded_total{step="reimage"} 1');
    expect(text).toContain('nodepulse_remediation_steps_failed_total{step="reboot",cause="still_unhealthy"} 1');
    expect(text).toContain('nodepulse_remediation_steps_failed_total{step="reimage",cause="provider_error"} 1');
    expect(text).toContain('nodepulse_remediation_needs_human_total 1');
    expect(text).toContain('nodepulse_remediation_circuit_breaker_open 1');
    expect(text).toContain('nodepulse_remediation_unhealthy_nodes 3');
    expect(text).toContain('nodepulse_remediation_in_flight 1');
  });

  it('a rule that no longer holds any node back drops to 0', async () => {
    const metrics = new ControllerMetrics(false);
    metrics.observeBlocked(new Map([['circuit-breaker', 3]]));
    expect(await metrics.text()).toContain('nodepulse_remediation_blocked_nodes{rule="circuit-breaker"} 3');
    metrics.observeBlocked(new Map());
    expect(await metrics.text()).toContain('nodepulse_remediation_blocked_nodes{rule="circuit-breaker"} 0');
  });
});
