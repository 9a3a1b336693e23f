import type { CoreV1Event } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { nodeEvent } from '../../common/kube/nodeEvent.js';
import { ConfigError } from '../../common/config/configError.js';
import { controllerConfigSchema, loadControllerConfig } from '../../controller/config/controllerConfig.js';
import {
  PlatformEventTrust,
  platformEventWatches,
  platformRemediation,
  type PlatformConfig,
} from '../../controller/platformEvents.js';

const NOW = Date.parse('2026-03-02T08:00:00Z');
const SEC = 1000;

const platformWith = (overrides: Record<string, unknown> = {}): PlatformConfig => controllerConfigSchema.parse({ platform: overrides }).platform;
const defaults = platformWith();

/**
 * An AKS auto-repair event as the AKS docs describe it (reason and message from the "Node
 * auto-repair" page, source aks-auto-repair, on the Node), written the way client-go's recorder
 * writes one: namespace `default`, reporting fields copied from the source.
 */
function aksEvent(overrides: (event: CoreV1Event) => void = () => {}): CoreV1Event {
  const event = nodeEvent({
    node: { name: 'aks-nodepool1-12345678-vmss000001', uid: 'node-uid' },
    type: 'Normal',
    reason: 'NodeRebootStart',
    message: 'Node auto-repair is initiating a reboot action due to NotReady status persisting for more than five minutes.',
    component: 'aks-auto-repair',
    host: 'aks-remediator',
    now: new Date(NOW - 60 * SEC),
  });
  event.metadata = { ...event.metadata, uid: 'event-uid', creationTimestamp: new Date(NOW - 60 * SEC) };
  overrides(event);
  return event;
}

const rejected = (event: CoreV1Event, config = defaults) => {
  const verdict = platformRemediation(event, config, NOW);
  if (!verdict || !('rejected' in verdict)) throw new Error(`expected a rejection, got ${JSON.stringify(verdict)}`);
  return verdict.rejected;
};

describe('which events make the controller defer to the platform', () => {
  it("trusts AKS's own auto-repair event in default: the node and when, from the event", () => {
    expect(platformRemediation(aksEvent(), defaults, NOW)).toEqual({ node: 'aks-nodepool1-12345678-vmss000001', at: NOW - 60 * SEC });
  });

  it('ignores, without a word, events of sources that are not a configured remediator (our own among them)', () => {
    expect(platformRemediation(aksEvent((e) => (e.source = { component: 'nodepulse-agent' })), defaults, NOW)).toBeUndefined();
    expect(platformRemediation(aksEvent((e) => (e.source = undefined)), defaults, NOW)).toBeUndefined();
  });

  it('refuses a forgery in a tenant namespace: an Event there must name that namespace, and Node events live in default', () => {
    const forged = aksEvent((e) => {
      e.metadata = { ...e.metadata, namespace: 'team-a' };
      e.involvedObject = { ...e.involvedObject, namespace: 'team-a' };
    });
    expect(rejected(forged)).toContain('it is in namespace "team-a"; events from aks-auto-repair are trusted only in default (platform.trustedNamespaces)');
  });

  it('refuses kube-system unless it is configured as trusted, and then trusts it', () => {
    const inKubeSystem = aksEvent((e) => (e.metadata = { ...e.metadata, namespace: 'kube-system' }));
    expect(rejected(inKubeSystem)).toContain('namespace "kube-system"');
    expect(platformRemediation(inKubeSystem, platformWith({ trustedNamespaces: ['default', 'kube-system'] }), NOW)).toMatchObject({ at: NOW - 60 * SEC });
  });

  it('refuses an event about anything but a v1 Node, or about no object at all', () => {
    expect(rejected(aksEvent((e) => (e.involvedObject = { ...e.involvedObject, kind: 'Pod' })))).toContain('not a v1 Node');
    expect(rejected(aksEvent((e) => (e.involvedObject = { ...e.involvedObject, apiVersion: 'example.com/v1' })))).toContain('not a v1 Node');
    expect(rejected(aksEvent((e) => (e.involvedObject = { ...e.involvedObject, name: '' })))).toContain('not a v1 Node');
    // The kubelet leaves apiVersion out of its Node events (kubernetes/kubernetes#134503): still a Node.
    expect(platformRemediation(aksEvent((e) => delete e.involvedObject.apiVersion), defaults, NOW)).toMatchObject({ node: 'aks-nodepool1-12345678-vmss000001' });
  });

  it('refuses an event in default whose Node reference carries a namespace, which no real Node has', () => {
    expect(rejected(aksEvent((e) => (e.involvedObject = { ...e.involvedObject, namespace: 'default' })))).toContain(
      'its involvedObject names namespace "default", which a Node (cluster-scoped) never has',
    );
  });

  it('refuses an event whose reportingComponent contradicts its source', () => {
    expect(rejected(aksEvent((e) => (e.reportingComponent = 'nodepulse-agent')))).toBe(
      'its reportingComponent "nodepulse-agent" contradicts its source "aks-auto-repair"',
    );
  });

  it('accepts an event with no reportingComponent, unless platform.requireReportingComponent says otherwise', () => {
    const bare = aksEvent((e) => {
      delete e.reportingComponent;
      delete e.reportingInstance;
    });
    expect(platformRemediation(bare, defaults, NOW)).toMatchObject({ at: NOW - 60 * SEC });
    expect(rejected(bare, platformWith({ requireReportingComponent: true }))).toContain('no reportingComponent');
  });

  it('accepts any reportingInstance by default, and only the listed ones when platform.reportingInstances is set', () => {
    const pinned = platformWith({ reportingInstances: ['aks-remediator'] });
    expect(platformRemediation(aksEvent(), pinned, NOW)).toMatchObject({ at: NOW - 60 * SEC });
    expect(rejected(aksEvent((e) => (e.reportingInstance = 'someone-else')), pinned)).toContain(
      'its reportingInstance "someone-else" is not one of aks-remediator (platform.reportingInstances)',
    );
  });

  it('refuses an event dated beyond the allowed clock skew, which would defer for longer than deferSeconds', () => {
    const ahead = new Date(NOW + 3600 * SEC);
    const future = aksEvent((e) => {
      e.lastTimestamp = ahead;
      e.eventTime = ahead;
    });
    expect(rejected(future)).toContain("3600 s ahead of this controller's clock (platform.maxClockSkewSeconds: 60)");
  });

  it('takes an event a little ahead (within the skew) as happening now', () => {
    const slightly = new Date(NOW + 30 * SEC);
    expect(platformRemediation(aksEvent((e) => (e.lastTimestamp = slightly)), defaults, NOW)).toMatchObject({ at: NOW });
  });

  it('dates an event by its latest time: a repeat, a series, or only the creation the API server stamped', () => {
    const repeated = aksEvent((e) => (e.lastTimestamp = new Date(NOW - 5 * SEC)));
    expect(platformRemediation(repeated, defaults, NOW)).toMatchObject({ at: NOW - 5 * SEC });
    const series = aksEvent((e) => (e.series = { count: 3, lastObservedTime: new Date(NOW - 2 * SEC) }));
    expect(platformRemediation(series, defaults, NOW)).toMatchObject({ at: NOW - 2 * SEC });
    const bare = aksEvent((e) => {
      delete e.lastTimestamp;
      delete e.firstTimestamp;
      delete e.eventTime;
    });
    expect(platformRemediation(bare, defaults, NOW)).toMatchObject({ at: NOW - 60 * SEC });
    // Timestamps from a watch arrive as strings; they date the event as well.
    const asText = aksEvent((e) => (e.lastTimestamp = new Date(NOW - 7 * SEC).toISOString() as unknown as Date));
    expect(platformRemediation(asText, defaults, NOW)).toMatchObject({ at: NOW - 7 * SEC });
    const timeless = aksEvent((e) => {
      delete e.lastTimestamp;
      delete e.firstTimestamp;
      delete e.eventTime;
      e.metadata = { ...e.metadata, creationTimestamp: undefined };
    });
    expect(rejected(timeless)).toBe('it carries no timestamp');
  });
});

describe('the watches of platform events', () => {
  it('lists each trusted namespace for each remediator source, never all namespaces', () => {
    const watches = platformEventWatches(platformWith({ remediatorSources: ['aks-auto-repair', 'other-repairer'], trustedNamespaces: ['default', 'kube-system'] }));
    expect(watches).toEqual([
      { namespace: 'default', source: 'aks-auto-repair', path: '/api/v1/namespaces/default/events', fieldSelector: 'involvedObject.kind=Node,source=aks-auto-repair' },
      { namespace: 'default', source: 'other-repairer', path: '/api/v1/namespaces/default/events', fieldSelector: 'involvedObject.kind=Node,source=other-repairer' },
      { namespace: 'kube-system', source: 'aks-auto-repair', path: '/api/v1/namespaces/kube-system/events', fieldSelector: 'involvedObject.kind=Node,source=aks-auto-repair' },
      { namespace: 'kube-system', source: 'other-repairer', path: '/api/v1/namespaces/kube-system/events', fieldSelector: 'involvedObject.kind=Node,source=other-repairer' },
    ]);
    expect(platformEventWatches(defaults).map((w) => w.path)).toEqual(['/api/v1/namespaces/default/events']);
  });
});

describe('the loop-facing trust: one call per watched event', () => {
  const recorder = () => {
    const lines: Array<{ fields: Record<string, unknown>; message: string }> = [];
    return { lines, log: { warn: (fields: Record<string, unknown>, message: string) => lines.push({ fields, message }) } as never };
  };
  const forgedIn = (namespace: string, uid: string) =>
    aksEvent((e) => {
      e.metadata = { ...e.metadata, namespace, uid, name: `forged-${uid}` };
      e.involvedObject = { ...e.involvedObject, namespace };
    });

  it('returns the trusted remediation and logs nothing for it', () => {
    const { lines, log } = recorder();
    const trust = new PlatformEventTrust(defaults, log, () => NOW);
    expect(trust.remediation(aksEvent())).toEqual({ node: 'aks-nodepool1-12345678-vmss000001', at: NOW - 60 * SEC });
    expect(lines).toEqual([]);
  });

  it('refuses a forgery and says why once, however often it is updated; a second forgery is said again', () => {
    const { lines, log } = recorder();
    const trust = new PlatformEventTrust(defaults, log, () => NOW);
    for (let i = 0; i < 5; i++) expect(trust.remediation(forgedIn('team-a', 'one'))).toBeUndefined();
    expect(lines).toHaveLength(1);
    expect(lines[0]?.message).toBe(
      'platform event not trusted, not deferring to it: it is in namespace "team-a"; events from aks-auto-repair are trusted only in default (platform.trustedNamespaces)',
    );
    expect(lines[0]?.fields).toMatchObject({ event: 'team-a/forged-one', source: 'aks-auto-repair', node: 'aks-nodepool1-12345678-vmss000001' });
    trust.remediation(forgedIn('team-b', 'two'));
    expect(lines).toHaveLength(2);
  });

  it('keeps its memory of refusals bounded under a flood of forgeries', () => {
    const { lines, log } = recorder();
    const trust = new PlatformEventTrust(defaults, log, () => NOW);
    for (let i = 0; i < 1100; i++) trust.remediation(forgedIn('team-a', `uid-${i}`));
    expect(lines).toHaveLength(1100);
    // The oldest were forgotten to make room, so a repeat of the first is said again; a recent one is not.
    trust.remediation(forgedIn('team-a', 'uid-1099'));
    trust.remediation(forgedIn('team-a', 'uid-0'));
    expect(lines).toHaveLength(1101);
  });
});

describe('the platform config', () => {
  it('defaults to trusting aks-auto-repair in default, any reporting instance, 60 s of clock skew', () => {
    expect(loadControllerConfig(undefined, {}).platform).toEqual({
      remediatorSources: ['aks-auto-repair'],
      deferSeconds: 3600,
      trustedNamespaces: ['default'],
      requireReportingComponent: false,
      reportingInstances: [],
      maxClockSkewSeconds: 60,
    });
  });

  it.each([
    [{ trustedNamespaces: ['team-a'] }, 'platform.trustedNamespaces.0: must be default or kube-system'],
    [{ trustedNamespaces: [] }, 'platform.trustedNamespaces: needs at least one namespace'],
    [{ remediatorSources: ['nodepulse-controller'] }, "platform.remediatorSources.0: must not be nodepulse's own component"],
    [{ remediatorSources: ['aks-auto-repair,reason=x'] }, 'platform.remediatorSources.0: must be an event source'],
    [{ reportingInstances: [''] }, 'platform.reportingInstances.0: must be an event source'],
    [{ maxClockSkewSeconds: -1 }, 'platform.maxClockSkewSeconds'],
  ])('rejects %j naming the field', (platform, message) => {
    const parse = () => loadControllerConfig(undefined, { NODEPULSE__platform: JSON.stringify(platform) });
    expect(parse).toThrow(ConfigError);
    expect(parse).toThrow(message);
  });
});
