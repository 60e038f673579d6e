/**
 * The only importer of the compiled addon (build/Release/berth.node). Everything
 * else uses the typed facades in src/bpf/, which build on the declarations here.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { projectPath } from '../paths.js';

/** Error thrown by the addon for a failed system or libbpf call. */
export interface NativeError extends Error {
  /** errno name, e.g. "ENOENT" */
  code: string;
  errno: number;
  /** the call that failed, e.g. "bpf_map_update_elem" */
  syscall: string;
  /** trimmed verifier log, when a program failed to load */
  verifierLog?: string;
}

export function isNativeError(e: unknown): e is NativeError {
  return e instanceof Error && typeof (e as NativeError).syscall === 'string';
}

export interface RawMapInfo {
  name: string;
  type: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  id: number;
  percpu: boolean;
  ncpus: number;
  /** bytes user space reads or writes per value (all CPUs for per-CPU maps) */
  valueBytes: number;
}

export interface RawMap {
  info(): RawMapInfo;
  lookup(key: Buffer): Promise<Buffer | null>;
  update(key: Buffer, value: Buffer, flags?: number): Promise<void>;
  delete(key: Buffer): Promise<boolean>;
  updateBatch(keys: Buffer, values: Buffer, flags?: number): Promise<number>;
  deleteBatch(keys: Buffer): Promise<number>;
  entries(): Promise<{ keys: Buffer; values: Buffer; count: number }>;
  pin(path: string): Promise<void>;
  close(): void;
}

export interface TestRunResult {
  retval: number;
  data: Buffer;
  ctx?: Buffer;
  /** average ns per run, as the kernel measured it */
  duration: number;
}

export interface AttachTarget {
  ifname?: string;
  ifindex?: number;
  /** a netns file such as /var/run/netns/NAME; omitted: the caller's namespace */
  netns?: string;
}

export interface TcAttachOptions extends AttachTarget {
  direction: 'ingress' | 'egress';
  /** auto: tcx where the kernel has it, else clsact + cls_bpf */
  mode?: 'auto' | 'tcx' | 'clsact';
  priority?: number;
  handle?: number;
}

export interface XdpAttachOptions extends AttachTarget {
  mode?: 'native' | 'generic';
}

export interface RawLinkInfo {
  kind: 'tcx' | 'clsact' | 'xdp';
  ifindex: number;
  netns: string;
  direction?: 'ingress' | 'egress';
  mode?: 'native' | 'generic';
  progId: number;
  linkId?: number;
  handle?: number;
  priority?: number;
  qdiscCreated?: boolean;
  detached: boolean;
}

export interface RawLink {
  info(): RawLinkInfo;
  pin(path: string): Promise<void>;
  detach(): Promise<void>;
  close(): void;
}

export interface RawProgram {
  info(): { name: string; type: string; id: number };
  testRun(opts: { data: Buffer; ctx?: Buffer; repeat?: number }): Promise<TestRunResult>;
  attachTc(opts: TcAttachOptions): Promise<RawLink>;
  attachXdp(opts: XdpAttachOptions): Promise<RawLink>;
  pin(path: string): Promise<void>;
  close(): void;
}

export interface RawObject {
  consts(): { name: string; size: number }[];
  setConst(name: string, value: Buffer): void;
  load(): Promise<void>;
  maps(): { name: string; type: string; internal: boolean; pinPath: string }[];
  map(name: string): RawMap;
  programs(): { name: string; section: string; type: string }[];
  program(name: string): RawProgram;
  close(): void;
}

export interface ProbeResult {
  kernel: string;
  btf: boolean;
  tcx: boolean;
  netkit: boolean;
  ringbuf: boolean;
  progSchedCls: boolean;
  progXdp: boolean;
  progLoadError?: string;
  bpffs: { path: string; mounted: boolean };
  caps: { bpf: boolean; netAdmin: boolean; sysAdmin: boolean };
}

export interface XdpQueryResult {
  ifindex: number;
  attachMode: number;
  progId: number;
  features: { basic: boolean; redirect: boolean; ndoXmit: boolean; zerocopy: boolean };
}

export interface Addon {
  BpfObject: { open(path: string, opts?: { pinRoot?: string; name?: string }): Promise<RawObject> };
  RingBuffer: new (map: RawMap, onRecord: (rec: Buffer) => void) => {
    close(): void;
    stats(): { delivered: number; lost: number };
  };
  openPinnedMap(path: string): Promise<RawMap>;
  openPinnedLink(path: string): Promise<RawLink>;
  probe(opts?: { bpffs?: string }): Promise<ProbeResult>;
  xdpQuery(opts: AttachTarget): Promise<XdpQueryResult>;
  abiSizes(): Record<string, number>;
  libbpf(): { version: string; mode: 'in-tree' | 'system'; possibleCpus: number };
  setLogger(fn: ((level: 'warn' | 'info' | 'debug', message: string) => void) | null): void;
}

let cached: Addon | undefined;

/** Loads the addon once; a clear error says how to build it when it is missing. */
export function addon(): Addon {
  if (cached) return cached;
  const file = projectPath('build', 'Release', 'berth.node');
  if (!existsSync(file)) {
    throw new Error(`berth's native addon is not built (${file} is missing): run 'npm run setup'`);
  }
  const require = createRequire(import.meta.url);
  cached = require(file) as Addon;
  return cached;
}
