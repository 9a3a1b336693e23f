import { createRequire } from 'node:module';

/**
 * node:http, loaded with require(). An ESM `import ... from 'node:http'` evaluates every export
 * of the module, including its lazy WebSocket ones, which load undici: +2.8 MiB anonymous and
 * +2.3 MiB file-backed RSS on every node for code the agent never runs (bench/agentMemory.ts).
 */
export const http = createRequire(import.meta.url)('node:http') as typeof import('node:http');
