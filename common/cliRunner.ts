import { ConfigError } from './config/configError.js';

/**
 * Runs a command's `main` and turns its failure into an exit code: errors an operator fixes
 * (named in `operatorErrors`) are one clear line, anything else keeps its stack trace. Shared
 * by nodepulse-agent and nodepulse-controller.
 */
export function runCli(command: string, main: () => Promise<number>, operatorErrors: readonly string[]): void {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      const error = err as Error;
      const known = operatorErrors.includes(error?.name);
      process.stderr.write(`${command}: ${known ? error.message : (error?.stack ?? String(err))}\n`);
      // Exit now (servers and timers may still be open), once the last lines are out.
      void flushOutput().then(() => process.exit(err instanceof ConfigError ? 2 : 1));
    },
  );
}

/**
 * Resolves once everything written to stdout and stderr has reached them, or after `timeoutMs`:
 * process.exit() drops what a pipe has not taken yet, and a stuck reader must not hold the exit.
 */
export function flushOutput(timeoutMs = 2000): Promise<void> {
  return new Promise((resolve) => {
    setTimeout(resolve, timeoutMs).unref();
    process.stdout.write('', () => process.stderr.write('', () => resolve()));
  });
}
