import { describe, expect, it } from 'vitest';
import { encodeConst, structCodec, u32 } from './codec.js';

describe('structCodec', () => {
  interface S { a: number; b: number; c: bigint; d: number }
  const codec = structCodec<S & { pad: never }>('s', [
    ['a', 'u8'],
    ['pad', { pad: 1 }],
    ['b', 'u16'],
    ['c', 'u64'],
    ['d', 'be32'],
  ]);

  it('lays fields out in order with explicit padding', () => {
    expect(codec.size).toBe(16);
    const b = codec.encode({ a: 0xab, b: 0x1234, c: 0x0102030405060708n, d: 0x0a000001 });
    expect(b.toString('hex')).toBe('ab00' + '3412' + '0807060504030201' + '0a000001');
  });

  it('decodes what it encodes, at an offset', () => {
    const v = { a: 7, b: 65535, c: 2n ** 63n, d: 0xc0a80001 };
    const buf = Buffer.concat([Buffer.alloc(3), codec.encode(v)]);
    expect(codec.decode(buf, 3)).toEqual(v);
  });

  it('refuses a short buffer, naming the struct', () => {
    expect(() => codec.decode(Buffer.alloc(4))).toThrow(/s needs 16 bytes, got 4/);
  });

  it('refuses a missing field, naming it', () => {
    expect(() => codec.encode({ a: 1, b: 2, c: 3n } as S)).toThrow(/s\.d is missing/);
  });
});

describe('encodeConst', () => {
  it('encodes little-endian by the knob size', () => {
    expect(encodeConst('k', 0x01020304, 4).toString('hex')).toBe('04030201');
    expect(encodeConst('k', true, 1).toString('hex')).toBe('01');
    expect(encodeConst('k', 2n ** 40n, 8).toString('hex')).toBe('0000000000010000');
  });

  it('refuses values that do not fit, naming knob and range', () => {
    expect(() => encodeConst('cfg_x', 256, 1)).toThrow(/knob 'cfg_x' is 1 byte\(s\): 256 is out of range 0\.\.255/);
    expect(() => encodeConst('cfg_x', -1, 4)).toThrow(/out of range/);
  });

  it('u32 round-trips', () => {
    expect(u32.decode(u32.encode(0xdeadbeef))).toBe(0xdeadbeef);
  });
});
