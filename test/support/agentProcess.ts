import { createServer } from 'node:net';
import { CliProcess, agentCli } from './cliProcess.js';

export { eventually } from './cliProcess.js';
export type AgentProcess = CliProcess;

/** The agent as a separate process with `config`, as it runs on a node. */
export const AgentProcess = {
  start: (dir: string, name: string, config: object, env: Record<string, string> = {}): CliProcess => CliProcess.start(agentCli, dir, name, config, env),
};

/** A free TCP port on 127.0.0.1 (released at once; the agent binds it a moment later). */
export async function freeLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done, fail) => server.once('error', fail).listen(0, '127.0.0.1', done));
  const address = server.address();
  await new Promise((done) => server.close(done));
  if (address === null || typeof address === 'string') throw new Error('no loopback port');
  return address.port;
}
