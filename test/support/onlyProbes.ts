import { probeNames, type ProbeName } from '../../common/contract.js';

/** The `probes` section of an agent config with only these probes on (with their settings). */
export function onlyProbes(settings: Partial<Record<ProbeName, object>>): Record<ProbeName, object> {
  return Object.fromEntries(probeNames.map((name) => [name, settings[name] ?? { enabled: false }])) as Record<ProbeName, object>;
}
