/**
 * The protobuf wire format, as little of it as a unary gRPC call with string, bool and
 * embedded-message fields needs. Hand-written instead of a protobuf library: the agent reads
 * two small CRI replies and keeps its memory budget. Decoding never trusts a length or a tag:
 * anything truncated or malformed is a `ProtobufDecodeError`, unknown fields are skipped by
 * their wire type, as protobuf requires.
 */

export class ProtobufDecodeError extends Error {
  override name = 'ProtobufDecodeError';
}

export const wireTypes = { varint: 0, fixed64: 1, lengthDelimited: 2, fixed32: 5 } as const;

/** A field as read from the wire: a varint's value, or a length-delimited field's bytes. */
export type WireField =
  | { field: number; wireType: typeof wireTypes.varint; value: number }
  | { field: number; wireType: typeof wireTypes.lengthDelimited; value: Buffer }
  | { field: number; wireType: typeof wireTypes.fixed64 | typeof wireTypes.fixed32; value: null };

/** A field to write: a string, an embedded message's bytes (both length-delimited) or a bool. */
export type FieldValue = string | boolean | Buffer;

/** A varint takes at most 10 bytes (64 bits, 7 per byte). */
const MAX_VARINT_BYTES = 10;

function encodeVarint(value: number, out: number[]): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`a varint must be a non-negative safe integer, got ${value}`);
  let rest = value;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
}

/** Encodes fields in the order given, defaults included: a proto3 sender leaves those out itself. */
export function encodeMessage(fields: ReadonlyArray<readonly [field: number, value: FieldValue]>): Buffer {
  const parts: Buffer[] = [];
  for (const [field, value] of fields) {
    const head: number[] = [];
    if (typeof value === 'string' || Buffer.isBuffer(value)) {
      const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
      encodeVarint(field * 8 + wireTypes.lengthDelimited, head);
      encodeVarint(bytes.length, head);
      parts.push(Buffer.from(head), bytes);
    } else {
      encodeVarint(field * 8 + wireTypes.varint, head);
      encodeVarint(Number(value), head);
      parts.push(Buffer.from(head));
    }
  }
  return Buffer.concat(parts);
}

/** Reads a message's fields in wire order; throws `ProtobufDecodeError` on anything malformed. */
export function* decodeFields(bytes: Buffer): Generator<WireField> {
  let at = 0;
  const varint = (what: string): number => {
    let value = 0;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      if (at >= bytes.length) throw new ProtobufDecodeError(`truncated ${what} at byte ${at} of ${bytes.length}`);
      const byte = bytes[at++] as number;
      // Past 2^53 the value loses precision; only lengths and tags are used as numbers, and
      // those are checked against the buffer's size below.
      value += (byte & 0x7f) * 2 ** (7 * i);
      if (byte < 0x80) return value;
    }
    throw new ProtobufDecodeError(`${what} at byte ${at} is longer than ${MAX_VARINT_BYTES} bytes`);
  };
  const skip = (length: number, what: string) => {
    if (at + length > bytes.length) throw new ProtobufDecodeError(`truncated ${what}: needs ${length} bytes at byte ${at}, ${bytes.length - at} left`);
    at += length;
  };
  while (at < bytes.length) {
    const tagAt = at;
    const tag = varint('field tag');
    const field = Math.floor(tag / 8);
    const wireType = tag % 8;
    if (field === 0 || field > 0x1fffffff) throw new ProtobufDecodeError(`invalid field number ${field} at byte ${tagAt}`);
    switch (wireType) {
      case wireTypes.varint:
        yield { field, wireType, value: varint(`field ${field} varint`) };
        break;
      case wireTypes.lengthDelimited: {
        const length = varint(`field ${field} length`);
        const start = at;
        skip(length, `field ${field}`);
        yield { field, wireType, value: bytes.subarray(start, at) };
        break;
      }
      case wireTypes.fixed64:
        skip(8, `field ${field} fixed64`);
        yield { field, wireType, value: null };
        break;
      case wireTypes.fixed32:
        skip(4, `field ${field} fixed32`);
        yield { field, wireType, value: null };
        break;
      default:
        // 3 and 4 are proto2's deprecated groups, which no proto3 message (CRI's) carries; 6 and 7 do not exist.
        throw new ProtobufDecodeError(`unsupported wire type ${wireType} for field ${field} at byte ${tagAt}`);
    }
  }
}

/** The value of a string field; a known field on the wrong wire type is malformed. */
export function stringField(field: WireField, message: string): string {
  if (field.wireType !== wireTypes.lengthDelimited) throw wrongWireType(field, message, 'a string');
  return field.value.toString('utf8');
}

export function boolField(field: WireField, message: string): boolean {
  if (field.wireType !== wireTypes.varint) throw wrongWireType(field, message, 'a bool');
  return field.value !== 0;
}

export function messageField(field: WireField, message: string): Buffer {
  if (field.wireType !== wireTypes.lengthDelimited) throw wrongWireType(field, message, 'an embedded message');
  return field.value;
}

function wrongWireType(field: WireField, message: string, expected: string): ProtobufDecodeError {
  return new ProtobufDecodeError(`${message} field ${field.field} should be ${expected}, got wire type ${field.wireType}`);
}
