import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../common/config/configError.js';
import { loadControllerConfig } from '../../controller/config/controllerConfig.js';

function configFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'nodepulse-controller-')), 'config.yaml');
  writeFileSync(file, text);
  return file;
}

describe('controller config', () => {
  it('with no file, reproduces the AKS defaults and acts in dry-run only', () => {
    const config = loadControllerConfig(undefined, {});
    expect(config.provider.type).toBe('dry-run');
    expect(config.detection).toMatchObject({ notReadySeconds: 600, noStatusSeconds: 600, remediateAfterSeconds: 300 });
    expect(config.ladder).toMatchObject({ maxAttempts: 3, overallBoundSeconds: 3600 });
    expect(config.safety).toMatchObject({ maxInFlight: 1, circuitBreaker: { maxUnhealthyPercent: 20, minUnhealthyAllowed: 1 } });
    expect(config.quarantine.enabled).toBe(false);
    expect(config.events.reportingComponent).toBe('nodepulse-controller');
  });

  it('takes the workload identity settings from the variables the AKS webhook injects', () => {
    const config = loadControllerConfig(undefined, {
      AZURE_CLIENT_ID: 'client',
      AZURE_TENANT_ID: 'tenant',
      AZURE_FEDERATED_TOKEN_FILE: '/var/run/secrets/azure/tokens/azure-identity-token',
    });
    expect(config.provider.azure).toMatchObject({
      clientId: 'client',
      tenantId: 'tenant',
      federatedTokenFile: '/var/run/secrets/azure/tokens/azure-identity-token',
    });
  });

  it.each([
    ['provider:\n  type: azur\n', 'provider.type'],
    ['ladder:\n  maxAttempts: 0\n', 'ladder.maxAttempts'],
    ['detection:\n  notReadySecond: 60\n', 'notReadySecond'],
    ['leaderElection:\n  leaseDurationSeconds: 5\n  renewDeadlineSeconds: 10\n', 'leaderElection: needs retryPeriodSeconds < renewDeadlineSeconds < leaseDurationSeconds'],
    ['quarantine:\n  enabled: true\n', 'quarantine.conditions'],
    ['optOut:\n  key: "not a key!"\n', 'optOut.key'],
    ['provider:\n  type: azure\n', 'provider.azure.tenantId: required for workload identity'],
  ])('rejects %j naming the field', (text, field) => {
    expect(() => loadControllerConfig(configFile(text), {})).toThrow(ConfigError);
    expect(() => loadControllerConfig(configFile(text), {})).toThrow(field);
  });
});
