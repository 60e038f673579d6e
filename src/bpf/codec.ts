/**
 * Fixed-size binary codecs for map keys, values and events. Host byte order
 * (little-endian on every machine berth supports) unless a field says "be".
 */
export interface Codec<T> {
  readonly name: string;
  readonly size: number;
  encode(value: T): Buffer;
  decode(buf: Buffer, offset?: number): T;
}

/** { bytes: n }: a byte array (addresses, MACs), a Buffer of exactly n bytes. */
type FieldKind = 'u8' | 'u16' | 'u32' | 'u64' | 'be16' | 'be32' | { pad: number } | { bytes: number };

/** One field of a C struct, in declaration order. */
export type Field<T> = readonly [keyof T & string, FieldKind];

function width(kind: FieldKind): number {
  if (typeof kind === 'object') return 'pad' in kind ? kind.pad : kind.bytes;
  return { u8: 1, u16: 2, u32: 4, u64: 8, be16: 2, be32: 4 }[kind];
}

/**
 * A codec for a C struct laid out field by field with no implicit padding
 * (berth_abi.h declares explicit pad fields for that reason). u64 fields are
 * bigint; everything else is number.
 */
export function structCodec<T extends object>(name: string, fields: readonly Field<T>[]): Codec<T> {
  const size = fields.reduce((n, [, k]) => n + width(k), 0);
  return {
    name,
    size,
    encode(value: T): Buffer {
      const b = Buffer.alloc(size);
      let off = 0;
      for (const [key, kind] of fields) {
        const v = (value as Record<string, unknown>)[key];
        if (typeof kind === 'object' && 'bytes' in kind) {
          if (!Buffer.isBuffer(v) || v.length !== kind.bytes) throw new TypeError(`${name}.${key} must be ${kind.bytes} bytes`);
          v.copy(b, off);
        } else if (typeof kind !== 'object') {
          if (v === undefined) throw new TypeError(`${name}.${key} is missing`);
          switch (kind) {
            case 'u8': b.writeUInt8(Number(v), off); break;
            case 'u16': b.writeUInt16LE(Number(v), off); break;
            case 'u32': b.writeUInt32LE(Number(v), off); break;
            case 'be16': b.writeUInt16BE(Number(v), off); break;
            case 'be32': b.writeUInt32BE(Number(v), off); break;
            case 'u64': b.writeBigUInt64LE(BigInt(v as bigint | number), off); break;
          }
        }
        off += width(kind);
      }
      return b;
    },
    decode(buf: Buffer, offset = 0): T {
      if (buf.length - offset < size) {
        throw new RangeError(`${name} needs ${size} bytes, got ${buf.length - offset}`);
      }
      const out: Record<string, unknown> = {};
      let off = offset;
      for (const [key, kind] of fields) {
        switch (kind) {
          case 'u8': out[key] = buf.readUInt8(off); break;
          case 'u16': out[key] = buf.readUInt16LE(off); break;
          case 'u32': out[key] = buf.readUInt32LE(off); break;
          case 'be16': out[key] = buf.readUInt16BE(off); break;
          case 'be32': out[key] = buf.readUInt32BE(off); break;
          case 'u64': out[key] = buf.readBigUInt64LE(off); break;
          default:
            if ('bytes' in kind) out[key] = Buffer.from(buf.subarray(off, off + kind.bytes));
            break; // padding
        }
        off += width(kind);
      }
      return out as T;
    },
  };
}

/** A plain unsigned integer key or value (u32 or u64). */
export const u32: Codec<number> = {
  name: 'u32',
  size: 4,
  encode: (v) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); return b; },
  decode: (b, o = 0) => b.readUInt32LE(o),
};

export const u64: Codec<bigint> = {
  name: 'u64',
  size: 8,
  encode: (v) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(v); return b; },
  decode: (b, o = 0) => b.readBigUInt64LE(o),
};

/** Encodes a knob value for a `const volatile` of @size bytes. */
export function encodeConst(name: string, value: number | bigint | boolean | Buffer, size: number): Buffer {
  if (Buffer.isBuffer(value)) return value;
  const n = typeof value === 'boolean' ? (value ? 1n : 0n) : BigInt(value);
  const max = (1n << BigInt(size * 8)) - 1n;
  if (n < 0n || n > max) {
    throw new RangeError(`knob '${name}' is ${size} byte(s): ${value} is out of range 0..${max}`);
  }
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = Number((n >> BigInt(8 * i)) & 0xffn);
  return b;
}
