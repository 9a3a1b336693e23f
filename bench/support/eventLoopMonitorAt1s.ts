import perfHooks from 'node:perf_hooks';

/**
 * Preloaded (`node --import`) into one footprint variant, never into the agent itself: makes
 * every event-loop delay monitor sample once a second instead of at its requested resolution.
 * prom-client's default metrics ask for 10 ms, which wakes the agent 100 times a second; this
 * variant measures what a coarser resolution would save.
 */
const monitor = perfHooks.monitorEventLoopDelay.bind(perfHooks);
perfHooks.monitorEventLoopDelay = (options) => monitor({ ...options, resolution: 1000 });
