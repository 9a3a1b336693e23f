import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onExitCleanup } from './exitCleanup.js';
import { removeWhenParentDies } from './parentDeathGuard.js';

/**
 * A temporary folder that goes away however the run ends: remove() on an orderly stop, the exit
 * hooks on Ctrl-C or an error, and a watchdog when this process is SIGKILLed.
 */
export function runDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const releaseGuard = removeWhenParentDies(dir);
  const unregisterExitHook = onExitCleanup(() => rmSync(dir, { recursive: true, force: true }));
  return {
    dir,
    remove: () => {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
      unregisterExitHook();
      releaseGuard();
    },
  };
}
