import type { ClientHttp2Session, IncomingHttpHeaders } from 'node:http2';
import { connect as connectUnix } from 'node:net';
import { setDeadline } from '../../common/deadline.js';

/**
 * Unary gRPC calls over HTTP/2 on a unix socket (the CRI's transport), with node:http2 and no
 * gRPC library: the agent makes two small calls per sample, and @grpc/grpc-js would cost the
 * agent's memory budget more than the whole probe. Messages are the caller's bytes (see
 * grpcProtobuf.ts). One session is kept across calls and made again when it closes or fails.
 */

/** The server answered with a gRPC status other than OK. */
export class GrpcStatusError extends Error {
  override name = 'GrpcStatusError';
  constructor(
    readonly method: string,
    readonly code: number,
    readonly details: string,
  ) {
    super(`${method} failed: ${grpcCodeName(code)}${details ? `: ${details}` : ''}`);
  }
}

/** The reply was not a well-formed gRPC reply (HTTP status, content type, framing, trailers). */
export class GrpcProtocolError extends Error {
  override name = 'GrpcProtocolError';
}

/** The call's deadline passed before the reply was complete. */
export class GrpcDeadlineError extends Error {
  override name = 'TimeoutError';
}

const codeNames = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
];
export const GRPC_DEADLINE_EXCEEDED = 4;

export function grpcCodeName(code: number): string {
  return codeNames[code] ?? `code ${code}`;
}

/** gRPC's length-prefixed message: a compressed flag byte, a 4-byte big-endian length, the bytes. */
const FRAME_HEADER_BYTES = 5;

function frame(message: Buffer): Buffer {
  const header = Buffer.alloc(FRAME_HEADER_BYTES);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

/** The one message of a unary reply. */
function unframe(method: string, body: Buffer): Buffer {
  if (body.length < FRAME_HEADER_BYTES) {
    throw new GrpcProtocolError(`${method} reply ${body.length === 0 ? 'has no message' : `is truncated: ${body.length} bytes, less than a message header`}`);
  }
  const compressed = body.readUInt8(0);
  if (compressed !== 0) throw new GrpcProtocolError(`${method} reply is compressed (flag ${compressed}), although no compression was offered`);
  const end = FRAME_HEADER_BYTES + body.readUInt32BE(1);
  if (end > body.length) throw new GrpcProtocolError(`${method} reply is truncated: its message says ${end - FRAME_HEADER_BYTES} bytes, ${body.length - FRAME_HEADER_BYTES} arrived`);
  if (end < body.length) throw new GrpcProtocolError(`${method} reply carries more than one message`);
  return body.subarray(FRAME_HEADER_BYTES, end);
}

function header(headers: IncomingHttpHeaders | undefined, name: string): string | undefined {
  const value = headers?.[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Checks the HTTP/2 response and its trailers and returns the reply's message. */
function replyMessage(method: string, headers: IncomingHttpHeaders | undefined, trailers: IncomingHttpHeaders | undefined, body: Buffer): Buffer {
  // node:http2 gives :status as a number, whatever its type says.
  const status = Number(headers?.[':status']);
  if (status !== 200) throw new GrpcProtocolError(`${method} answered HTTP ${headers ? status : 'nothing'}, expected 200`);
  const contentType = header(headers, 'content-type') ?? '';
  if (!contentType.startsWith('application/grpc')) throw new GrpcProtocolError(`${method} answered content-type ${JSON.stringify(contentType)}, expected application/grpc`);
  // A reply with no message may come as headers alone ("trailers-only"), grpc-status among them.
  const grpcStatus = header(trailers, 'grpc-status') ?? header(headers, 'grpc-status');
  if (grpcStatus === undefined) throw new GrpcProtocolError(`${method} reply ended without a grpc-status trailer`);
  const code = Number(grpcStatus);
  if (!/^\d+$/.test(grpcStatus)) throw new GrpcProtocolError(`${method} reply has grpc-status ${JSON.stringify(grpcStatus)}, not a number`);
  if (code !== 0) throw new GrpcStatusError(method, code, percentDecoded(header(trailers, 'grpc-message') ?? header(headers, 'grpc-message') ?? ''));
  return unframe(method, body);
}

/** grpc-message is percent-encoded; a bad escape is kept as it came rather than lost. */
function percentDecoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

export interface UnaryOptions {
  /** The deadline of the whole call, sent as grpc-timeout too. */
  timeoutMs: number;
  /** The caller's cancellation (the probe loop's). */
  signal: AbortSignal;
  /** A larger reply is refused, so a misbehaving server cannot flood the agent. */
  maxReplyBytes: number;
}

export class GrpcUnixClient {
  private session: ClientHttp2Session | undefined;

  constructor(readonly socketPath: string) {}

  /** Sends one request message to `method` (`/package.Service/Method`) and resolves with the reply message. */
  async unary(method: string, request: Buffer, options: UnaryOptions): Promise<Buffer> {
    const { timeoutMs, signal, maxReplyBytes } = options;
    const http2 = await loadHttp2();
    signal.throwIfAborted();
    const session = this.currentSession(http2);
    return new Promise((resolve, reject) => {
      const stream = session.request({
        ':method': 'POST',
        ':path': method,
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-timeout': `${timeoutMs}m`,
      });
      let headers: IncomingHttpHeaders | undefined;
      let trailers: IncomingHttpHeaders | undefined;
      const chunks: Buffer[] = [];
      let size = 0;
      let settled = false;
      const finish = (error: unknown, reply?: Buffer) => {
        if (settled) return;
        settled = true;
        deadline.clear();
        signal.removeEventListener('abort', onAbort);
        session.off('close', onSessionClose);
        if (error === undefined) return resolve(reply as Buffer);
        if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
        reject(error);
      };
      const deadline = setDeadline(() => {
        // A session that let a call pass its deadline may be stalled mid-frame: the next call makes a new one.
        this.drop(session);
        finish(new GrpcDeadlineError(`${method} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const onAbort = () => finish(signal.reason);
      // A connection that fails (ENOENT, ECONNREFUSED) or drops ends the session; its error is the call's.
      const onSessionClose = () => finish(sessionErrors.get(session) ?? new GrpcProtocolError(`the connection to ${this.socketPath} closed during ${method}`));
      signal.addEventListener('abort', onAbort, { once: true });
      session.once('close', onSessionClose);
      stream.on('response', (received) => (headers = received));
      stream.on('trailers', (received) => (trailers = received));
      stream.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxReplyBytes) finish(new GrpcProtocolError(`${method} reply is larger than ${maxReplyBytes} bytes`));
        else chunks.push(chunk);
      });
      stream.on('end', () => {
        try {
          finish(undefined, replyMessage(method, headers, trailers, Buffer.concat(chunks)));
        } catch (err) {
          finish(err);
        }
      });
      // A stream waiting for a connection that failed is cancelled with the connection's error as its cause.
      stream.on('error', (err) => finish(sessionErrors.get(session) ?? (isCancelledBy(err) ? err.cause : err)));
      stream.on('close', () => finish(sessionErrors.get(session) ?? new GrpcProtocolError(`${method} stream closed before its reply ended (HTTP/2 error code ${stream.rstCode})`)));
      stream.end(frame(request));
    });
  }

  /** Closes the session; the next call opens a new one. */
  close(): void {
    if (this.session) this.drop(this.session);
  }

  private currentSession(http2: Http2Module): ClientHttp2Session {
    if (this.session && !this.session.closed && !this.session.destroyed) return this.session;
    const session = http2.connect('http://localhost', { createConnection: () => connectUnix(this.socketPath) });
    // Kept for the calls waiting on it; a session's 'error' is always followed by its 'close'.
    session.on('error', (err) => sessionErrors.set(session, err));
    session.on('close', () => {
      if (this.session === session) this.session = undefined;
    });
    // An idle session never keeps the agent's process alive; a call in flight does, by its deadline.
    session.unref();
    this.session = session;
    return session;
  }

  private drop(session: ClientHttp2Session): void {
    if (this.session === session) this.session = undefined;
    session.destroy();
  }
}

const sessionErrors = new WeakMap<ClientHttp2Session, Error>();

type Http2Module = typeof import('node:http2');
let http2Module: Promise<Http2Module> | undefined;

/** node:http2 is loaded by the first call: an agent with the runtime probe off never pays its ~1 MiB. */
function loadHttp2(): Promise<Http2Module> {
  http2Module ??= import('node:http2');
  return http2Module;
}

function isCancelledBy(err: Error): err is Error & { cause: Error } {
  return (err as { code?: unknown }).code === 'ERR_HTTP2_STREAM_CANCEL' && err.cause instanceof Error;
}
