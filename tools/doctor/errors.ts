/** A wrong flag or value on the command line: exit 2 with the flag named and the fix. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The API server cannot be reached or refuses a read: exit 2 with the missing permission named. */
export class AccessError extends Error {
  override readonly name = 'AccessError';
}
