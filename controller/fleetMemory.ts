/**
 * The little the controller remembers about the fleet beyond what the Nodes say: when the
 * last unhealthy-node storm ended (the cooldown runs from there). Kept as JSON in one
 * annotation of the leader Lease (keys.fleetMemory), so a failed-over leader honours the
 * cooldown its predecessor started. Anything unreadable is treated as "no memory".
 */
export interface FleetMemory {
  stormEndedAt?: number;
}

export function parseFleetMemory(value: string | undefined, now: number): FleetMemory {
  if (!value) return {};
  let raw: unknown;
  try {
    raw = JSON.parse(value);
  } catch {
    return {};
  }
  const stormEnded = typeof raw === 'object' && raw !== null ? (raw as { stormEndedAt?: unknown }).stormEndedAt : undefined;
  const at = typeof stormEnded === 'string' ? Date.parse(stormEnded) : Number.NaN;
  // A time in our future came from a skewed clock: it would stretch the cooldown, so cap it.
  return Number.isFinite(at) ? { stormEndedAt: Math.min(at, now) } : {};
}

export function serializeFleetMemory(memory: FleetMemory): string {
  return JSON.stringify(memory.stormEndedAt === undefined ? {} : { stormEndedAt: new Date(memory.stormEndedAt).toISOString() });
}
