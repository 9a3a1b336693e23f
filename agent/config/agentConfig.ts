import { agentConfigSchema, type AgentConfig } from './schema.js';
import { loadConfig } from '../../common/config/loadConfig.js';

/** Friendly environment variables (the downward API and the usual client variables). */
const agentEnvAliases: Record<string, string> = {
  NODE_NAME: 'nodeName',
  NODEPULSE_PROFILE: 'profile',
  KUBECONFIG: 'kubeconfig',
  POD_NAME: 'probes.konnectivity.podName',
  POD_NAMESPACE: 'probes.konnectivity.podNamespace',
  POD_IP: 'server.podAddress',
};

export function loadAgentConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  return loadConfig(agentConfigSchema, { file, env, aliases: agentEnvAliases });
}
