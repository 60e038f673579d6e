import { describe, expect, it } from 'vitest';
import { parsePrefix } from '../ipam/addr.js';
import { blockBits, blockCount, blockGateway, nthBlock } from './blocks.js';

describe('routed blocks', () => {
  const s24 = parsePrefix('10.90.0.0/24');
  it('default to /26, or the -o routed.block asked for', () => {
    expect(blockBits(s24, undefined)).toBe(26);
    expect(blockBits(s24, '/28')).toBe(28);
    expect(blockBits(s24, '24')).toBe(24);
  });
  it('refuse a block that does not fit the subnet or has no room, naming both values', () => {
    expect(() => blockBits(parsePrefix('10.90.0.0/28'), undefined)).toThrow(/the default block \/26 does not fit subnet 10.90.0.0\/28/);
    expect(() => blockBits(s24, '/16')).toThrow(/block \/16 does not fit subnet 10.90.0.0\/24/);
    expect(() => blockBits(s24, '/31')).toThrow(/block \/31 of subnet 10.90.0.0\/24 is too small/);
    expect(() => blockBits(s24, 'x')).toThrow(/routed.block=x is invalid/);
  });
  it('split the subnet in order, each with its first address as gateway', () => {
    expect(blockCount(s24, 26)).toBe(4n);
    expect([0n, 1n, 3n].map((i) => nthBlock(s24, 26, i))).toEqual(['10.90.0.0/26', '10.90.0.64/26', '10.90.0.192/26']);
    expect(nthBlock(parsePrefix('10.0.0.0/8'), 26, 1024n)).toBe('10.1.0.0/26');
    expect(blockGateway('10.90.0.64/26')).toBe('10.90.0.65');
  });
});
