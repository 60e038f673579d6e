export { BpfObject, BpfProgram, type OpenOptions, type ConstValue } from './object.js';
export { BpfMap, PerCpuMap, UpdateFlags } from './map.js';
export { BpfLink } from './link.js';
export { RingBuffer } from './ringbuf.js';
export * from './codec.js';
export * as abi from './abi.js';
