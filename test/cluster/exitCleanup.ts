/**
 * Synchronous clean-ups that must run however the process ends (normal exit, Ctrl-C, SIGTERM),
 * so that no etcd or kube-apiserver outlives a test run and no temporary folder is left behind.
 * They run newest first: processes registered after their folder are killed before it is removed.
 */
const cleanups: Array<() => void> = [];
let hooksInstalled = false;

function runAll(): void {
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      cleanup();
    } catch {
      // best effort while the process goes down; the other clean-ups still run
    }
  }
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', runAll);
  for (const [signal, exitCode] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const) {
    // Listening suppresses the default exit, so exit as it would have (the exit hook then cleans
    // up), unless another listener owns the signal: it shuts down in order and exits itself.
    process.on(signal, () => {
      if (process.listenerCount(signal) === 1) process.exit(exitCode);
    });
  }
}

/** Registers a clean-up; call the returned function once it has been done the orderly way. */
export function onExitCleanup(cleanup: () => void): () => void {
  installHooks();
  cleanups.push(cleanup);
  return () => {
    const index = cleanups.indexOf(cleanup);
    if (index >= 0) cleanups.splice(index, 1);
  };
}
