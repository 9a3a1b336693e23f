import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants, createGzip, gzipSync, type Gzip } from 'node:zlib';
import type { ControllerConfig } from './config/controllerConfig.js';
import { fleetPageHtml } from './fleetPageHtml.js';
import type { FleetRows } from './fleetRows.js';
import { cellsOf, fleetSection, nodeDetail, ReasonTable, wireRow, type FleetSnapshot, type TimelineEntry, type WireRow } from './fleetView.js';
import { columns } from './fleetRows.js';

/**
 * The fleet health page on the controller's metrics port, read-only: GET /fleet (the page),
 * /fleet/stream (server-sent events: every row once, then each second only the rows and
 * sections that moved), /fleet/node?name= (one node in full). Nothing here writes anywhere;
 * anything but GET/HEAD is refused by the server before it gets here.
 */
export interface FleetPageDeps {
  config: ControllerConfig;
  rows: FleetRows;
  snapshot: () => FleetSnapshot;
  ownEvents: () => readonly TimelineEntry[];
  now?: () => number;
  /** How often moved rows are sent (default 1 s). */
  tickMs?: number;
  /** A viewer this far behind (not reading) is dropped rather than buffered for (default 8 MiB). */
  maxBufferedBytes?: number;
}

/** More viewers than this are refused: each costs a stream and its share of every tick. */
const maxViewers = 16;
const keepAliveMs = 15_000;

interface Viewer {
  res: ServerResponse;
  out: Gzip | ServerResponse;
  gzip?: Gzip;
}

export class FleetPage {
  private readonly viewers = new Set<Viewer>();
  private readonly reasons = new ReasonTable();
  /** What the viewers have of each row: its version and its letters. */
  private readonly sent = new Map<string, { version: number; cells: string }>();
  private reasonsSent = 0;
  private fleetSent = '';
  private timer: NodeJS.Timeout | undefined;
  private lastWrite = 0;
  private readonly now: () => number;
  private readonly staleMs: number;
  private html: { plain: Buffer; gzip: Buffer } | undefined;

  constructor(private readonly deps: FleetPageDeps) {
    this.now = deps.now ?? Date.now;
    this.staleMs = 2 * deps.config.detection.agentHeartbeatSeconds * 1000;
  }

  /** Serves the page's paths; false for any other path. */
  handle(path: string, req: IncomingMessage, res: ServerResponse): boolean {
    if (path === '/') {
      res.writeHead(302, { location: 'fleet' }).end();
      return true;
    }
    if (path === '/fleet') {
      this.html ??= { plain: Buffer.from(fleetPageHtml), gzip: gzipSync(fleetPageHtml) };
      const gzip = acceptsGzip(req);
      res
        .writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...(gzip ? { 'content-encoding': 'gzip' } : {}), vary: 'accept-encoding' })
        .end(gzip ? this.html.gzip : this.html.plain);
      return true;
    }
    if (path === '/fleet/stream') {
      this.connect(req, res);
      return true;
    }
    if (path === '/fleet/node') {
      const name = new URL(req.url ?? '', 'http://page').searchParams.get('name') ?? '';
      this.deps.rows.retain(this.deps.snapshot().isCached);
      const row = this.deps.rows.get(name);
      if (!row) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end(`no node "${name}" in the controller's cache\n`);
        return true;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(nodeDetail(row, this.now(), this.staleMs, this.deps.config)));
      return true;
    }
    return false;
  }

  /** Ends every stream (the server is closing). */
  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    for (const v of this.viewers) v.res.destroy();
    this.viewers.clear();
  }

  get viewerCount(): number {
    return this.viewers.size;
  }

  private connect(req: IncomingMessage, res: ServerResponse): void {
    if (this.viewers.size >= maxViewers) {
      res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '30' }).end(`at most ${maxViewers} viewers at once; close another page\n`);
      return;
    }
    const gzip = acceptsGzip(req) ? createGzip({ level: 6 }) : undefined;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      ...(gzip ? { 'content-encoding': 'gzip' } : {}),
    });
    if (gzip) gzip.pipe(res);
    const viewer: Viewer = { res, out: gzip ?? res, ...(gzip ? { gzip } : {}) };
    const first = this.viewers.size === 0;
    this.viewers.add(viewer);
    res.on('close', () => {
      this.viewers.delete(viewer);
      gzip?.destroy();
      if (this.viewers.size === 0) this.idle();
    });
    this.send(viewer, `retry: 2000\n\n${frame('snapshot', this.snapshotPayload(first))}`);
    this.timer ??= setInterval(() => this.tick(), this.deps.tickMs ?? 1000);
    this.timer.unref();
  }

  /** Every row in full; with `reset` (no viewer yet) it is also what the next patch counts from. */
  private snapshotPayload(reset: boolean): string {
    const now = this.now();
    const snapshot = this.deps.snapshot();
    this.deps.rows.retain(snapshot.isCached);
    const rows: WireRow[] = [];
    if (reset) this.sent.clear();
    for (const row of this.deps.rows.values()) {
      const cells = cellsOf(row, now, this.staleMs);
      rows.push(wireRow(row, cells, now, this.reasons));
      if (reset) this.sent.set(row.name, { version: row.version, cells });
    }
    const fleet = JSON.stringify(fleetSection(this.deps.rows, snapshot, this.deps.config, this.deps.ownEvents()));
    if (reset) {
      this.fleetSent = fleet;
      this.reasonsSent = this.reasons.list.length;
    }
    return `{"at":${now},"staleMs":${this.staleMs},"columns":${JSON.stringify(columns)},"reasons":${JSON.stringify(this.reasons.list)},"rows":${JSON.stringify(rows)},"fleet":${fleet}}`;
  }

  /** The rows that moved since the last tick (a new letter, a new version, gone) and the sections if they changed. */
  private tick(): void {
    const now = this.now();
    const snapshot = this.deps.snapshot();
    const removed = this.deps.rows.retain(snapshot.isCached);
    for (const name of this.sent.keys()) if (!this.deps.rows.get(name)) removed.push(name);
    for (const name of removed) this.sent.delete(name);
    const changed: WireRow[] = [];
    for (const row of this.deps.rows.values()) {
      const cells = cellsOf(row, now, this.staleMs);
      const before = this.sent.get(row.name);
      if (before && before.version === row.version && before.cells === cells) continue;
      changed.push(wireRow(row, cells, now, this.reasons));
      this.sent.set(row.name, { version: row.version, cells });
    }
    const fleet = JSON.stringify(fleetSection(this.deps.rows, snapshot, this.deps.config, this.deps.ownEvents()));
    const fleetMoved = fleet !== this.fleetSent;
    const newReasons = this.reasons.list.slice(this.reasonsSent);
    if (changed.length === 0 && removed.length === 0 && !fleetMoved) {
      if (now - this.lastWrite >= keepAliveMs) this.broadcast(': keep-alive\n\n');
      return;
    }
    this.fleetSent = fleet;
    this.reasonsSent = this.reasons.list.length;
    const payload = `{"at":${now},"reasonsFrom":${this.reasonsSent - newReasons.length},"reasons":${JSON.stringify(newReasons)},"rows":${JSON.stringify(changed)},"removed":${JSON.stringify([...new Set(removed)])}${fleetMoved ? `,"fleet":${fleet}` : ''}}`;
    this.broadcast(frame('patch', payload));
  }

  private idle(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private broadcast(text: string): void {
    this.lastWrite = this.now();
    for (const v of this.viewers) this.send(v, text);
  }

  private send(viewer: Viewer, text: string): void {
    const behind = viewer.res.writableLength + (viewer.gzip?.writableLength ?? 0);
    if (behind > (this.deps.maxBufferedBytes ?? 8 * 1024 * 1024)) {
      viewer.res.destroy();
      return;
    }
    viewer.out.write(text);
    viewer.gzip?.flush(constants.Z_SYNC_FLUSH);
  }
}

function frame(event: string, data: string): string {
  return `event: ${event}\ndata: ${data}\n\n`;
}

function acceptsGzip(req: IncomingMessage): boolean {
  return /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
}
