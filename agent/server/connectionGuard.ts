import type { Server } from 'node:http';
import type { Socket } from 'node:net';

export interface ConnectionLimits {
  /** HTTP connections one listener holds at once (WebSocket stream clients have their own cap). */
  maxConnections: number;
  /** Of those, from one remote address. */
  maxPerSource: number;
  /**
   * Requests one connection may have in progress at once. Past this a pipelining client is cut
   * off: each pipelined request starts its answer at once, so depth is memory and CPU.
   */
  maxPipelined: number;
}

interface Held {
  source: string;
  /** Requests on this connection whose response has not finished. */
  busy: number;
}

/**
 * Caps the connections a listener holds, per listener and per remote address. At a cap the
 * oldest connection that is not being served gives way to the new one: one that has not sent
 * a complete request yet (a slowloris), one idle between keep-alive requests, or one whose
 * client does not read what it was sent. Only when every held connection is being served is
 * the new one refused. So no flood of silent, slow or never-reading sockets can lock out a
 * client that sends its request at once and reads the answer, such as the kubelet's liveness
 * probe on /healthz; and the descriptors and buffers held stay bounded whatever the flood.
 */
export class ConnectionGuard {
  /** Insertion order is age: the first idle entry is the oldest. */
  private readonly held = new Map<Socket, Held>();
  private readonly perSource = new Map<string, number>();
  evicted = 0;
  refused = 0;
  /** Connections closed for pipelining past maxPipelined. */
  cutOff = 0;

  constructor(private readonly limits: ConnectionLimits) {}

  /** Listens on `server`'s connections and requests; call before it listens. */
  attach(server: Server): void {
    server.on('connection', (socket: Socket) => this.admit(socket));
    server.on('request', (req, res) => {
      const held = this.held.get(req.socket);
      if (!held) return;
      held.busy += 1;
      res.once('close', () => {
        held.busy -= 1;
      });
      // The parser goes on emitting what was already read; one cut per connection.
      if (held.busy > this.limits.maxPipelined && !req.socket.destroyed) {
        this.cutOff += 1;
        req.socket.destroy();
      }
    });
  }

  get open(): number {
    return this.held.size;
  }

  /** True while a response is being written on `socket`: an error reply then would corrupt it. */
  isServing(socket: Socket): boolean {
    return (this.held.get(socket)?.busy ?? 0) > 0;
  }

  /** Stops counting `socket` (closed, or upgraded to a stream client, which the stream cap counts). */
  release(socket: Socket): void {
    const held = this.held.get(socket);
    if (!held) return;
    this.held.delete(socket);
    const left = (this.perSource.get(held.source) ?? 1) - 1;
    if (left > 0) this.perSource.set(held.source, left);
    else this.perSource.delete(held.source);
  }

  private admit(socket: Socket): void {
    const source = socket.remoteAddress ?? '';
    const full =
      ((this.perSource.get(source) ?? 0) >= this.limits.maxPerSource && !this.evictOne(source)) ||
      (this.held.size >= this.limits.maxConnections && !this.evictOne());
    if (full) {
      this.refused += 1;
      socket.destroy();
      return;
    }
    this.held.set(socket, { source, busy: 0 });
    this.perSource.set(source, (this.perSource.get(source) ?? 0) + 1);
    socket.once('close', () => this.release(socket));
  }

  /** Closes the oldest connection (from `source`, when given) that is not being served. */
  private evictOne(source?: string): boolean {
    for (const [socket, held] of this.held) {
      if (source !== undefined && held.source !== source) continue;
      // Output still queued means the client is not reading it: it is not being served either.
      if (held.busy > 0 && socket.writableLength === 0) continue;
      this.release(socket);
      socket.destroy();
      this.evicted += 1;
      return true;
    }
    return false;
  }
}
