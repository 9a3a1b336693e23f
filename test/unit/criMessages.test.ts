import { describe, expect, it } from 'vitest';
import { decodeStatusResponse, decodeVersionResponse, encodeStatusRequest, encodeVersionRequest } from '../../agent/probes/criMessages.js';
import { ProtobufDecodeError, decodeFields, encodeMessage } from '../../agent/probes/grpcProtobuf.js';

const condition = (type: string, status: boolean, reason = '', message = '') =>
  encodeMessage([
    [1, type],
    [2, status],
    [3, reason],
    [4, message],
  ]);
const statusResponse = (...conditions: Buffer[]) => encodeMessage([[1, encodeMessage(conditions.map((c) => [1, c] as const))]]);

describe('protobuf wire format', () => {
  it('reads back what it writes: strings, bools, embedded messages, multi-byte lengths and tags', () => {
    const long = 'x'.repeat(300);
    const bytes = encodeMessage([
      [1, 'containerd'],
      [2, true],
      [3, false],
      [20, long],
      [4, encodeMessage([[1, 'inner']])],
    ]);
    const fields = [...decodeFields(bytes)];
    expect(fields.map((f) => [f.field, f.wireType])).toEqual([
      [1, 2],
      [2, 0],
      [3, 0],
      [20, 2],
      [4, 2],
    ]);
    expect(fields[0]?.value?.toString()).toBe('containerd');
    expect(fields[1]?.value).toBe(1);
    expect(fields[2]?.value).toBe(0);
    expect(fields[3]?.value?.toString()).toBe(long);
    expect([...decodeFields(fields[4]?.value as Buffer)][0]?.value?.toString()).toBe('inner');
  });

  it('refuses every truncation of a message with a clear error, never a crash or a short read', () => {
    const bytes = encodeMessage([
      [1, 'RuntimeReady'],
      [2, true],
      [300, 'a field with a two-byte tag'],
    ]);
    for (let cut = 1; cut < bytes.length; cut++) {
      const truncated = bytes.subarray(0, cut);
      let error: unknown;
      try {
        [...decodeFields(truncated)];
      } catch (err) {
        error = err;
      }
      // A cut between two fields is a whole, shorter message; a cut inside one is an error.
      const boundaries = [14, 16];
      if (boundaries.includes(cut)) expect(error).toBeUndefined();
      else expect(error, `cut at ${cut}`).toBeInstanceOf(ProtobufDecodeError);
    }
    expect(() => [...decodeFields(bytes.subarray(0, 5))]).toThrow(/truncated field 1: needs 12 bytes at byte 2, 3 left/);
  });

  it('refuses a varint longer than ten bytes, field number 0 and the group wire types', () => {
    expect(() => [...decodeFields(Buffer.from([0x08, ...Array(10).fill(0xff), 0x01]))]).toThrow(/longer than 10 bytes/);
    expect(() => [...decodeFields(Buffer.from([0x02, 0x00]))]).toThrow(/invalid field number 0/);
    expect(() => [...decodeFields(Buffer.from([0x0b]))]).toThrow(/unsupported wire type 3 for field 1/);
  });
});

describe('CRI messages', () => {
  it('sends StatusRequest{verbose=false} as the empty message and VersionRequest with the API version', () => {
    expect(encodeStatusRequest()).toEqual(Buffer.alloc(0));
    expect(encodeVersionRequest().toString('hex')).toBe('0a027631'); // field 1, length 2, "v1"
  });

  it('reads RuntimeReady and NetworkReady with their reasons and messages from a StatusResponse', () => {
    const reply = statusResponse(
      condition('RuntimeReady', true),
      condition('NetworkReady', false, 'NetworkPluginNotReady', 'Network plugin returns error: cni plugin not initialized'),
    );
    expect(decodeStatusResponse(reply)).toEqual([
      { type: 'RuntimeReady', status: true, reason: '', message: '' },
      { type: 'NetworkReady', status: false, reason: 'NetworkPluginNotReady', message: 'Network plugin returns error: cni plugin not initialized' },
    ]);
  });

  it('skips the fields it does not read (info, runtime_handlers, features, a newer runtime\'s own) by wire type', () => {
    const fixed64 = Buffer.from([(9 << 3) | 1, 1, 2, 3, 4, 5, 6, 7, 8]);
    const fixed32 = Buffer.from([(10 << 3) | 5, 1, 2, 3, 4]);
    const reply = Buffer.concat([
      encodeMessage([[2, encodeMessage([[1, 'config'], [2, '{"huge": "json"}']])]]), // info map entry
      statusResponse(Buffer.concat([condition('RuntimeReady', true), encodeMessage([[7, 'unknown'], [8, true]]), fixed64, fixed32])),
      encodeMessage([[3, encodeMessage([[1, 'runc']])], [4, encodeMessage([[1, true]])]]),
    ]);
    expect(decodeStatusResponse(reply)).toEqual([{ type: 'RuntimeReady', status: true, reason: '', message: '' }]);
  });

  it('reads a StatusResponse without status as no conditions (proto3 default), which the probe reports as not ready', () => {
    expect(decodeStatusResponse(Buffer.alloc(0))).toEqual([]);
  });

  it('refuses a known field on the wrong wire type and a truncated condition', () => {
    expect(() => decodeStatusResponse(encodeMessage([[1, true]]))).toThrow(/StatusResponse field 1 should be an embedded message, got wire type 0/);
    const cut = statusResponse(condition('RuntimeReady', true));
    expect(() => decodeStatusResponse(cut.subarray(0, cut.length - 1))).toThrow(ProtobufDecodeError);
  });

  it('reads a VersionResponse', () => {
    const reply = encodeMessage([
      [1, '0.1.0'],
      [2, 'containerd'],
      [3, 'v2.4.2'],
      [4, 'v1'],
      [5, 'a field from a later API'],
    ]);
    expect(decodeVersionResponse(reply)).toEqual({ version: '0.1.0', runtimeName: 'containerd', runtimeVersion: 'v2.4.2', runtimeApiVersion: 'v1' });
  });
});
