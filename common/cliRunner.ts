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
      // Exit now: servers and timers may still be open.
      process.exit(err instanceof ConfigError ? 2 : 1);
    },
  );
}
