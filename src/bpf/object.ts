/**
 * BPF objects and programs: open, set knobs, load, then take maps and
 * programs out by name. libbpf's log goes to the "libbpf" logger.
 */
import { addon, type RawMapDef, type RawObject, type RawProgram, type TcAttachOptions, type TestRunResult, type XdpAttachOptions } from '../native/addon.js';
import { subsystemLogger } from '../log.js';
import { encodeConst, type Codec } from './codec.js';
import { BpfMap, PerCpuMap } from './map.js';
import { BpfLink } from './link.js';

let loggerInstalled = false;

function installLibbpfLogger(): void {
  if (loggerInstalled) return;
  loggerInstalled = true;
  const log = subsystemLogger('libbpf');
  addon().setLogger((level, message) => log[level](message.replace(/^libbpf: /, '')));
}

export type ConstValue = number | bigint | boolean | Buffer;

export interface OpenOptions {
  /** bpffs directory where maps marked pinning=by-name are pinned and reused */
  pinRoot?: string;
  /** `const volatile` knobs, set between open and load */
  consts?: Record<string, ConstValue>;
  /** map name -> max_entries, set between open and load */
  maxEntries?: Record<string, number>;
}

export class BpfProgram {
  constructor(private readonly raw: RawProgram) {}

  get info(): { name: string; type: string; id: number } {
    return this.raw.info();
  }

  /**
   * Runs the program on one packet with BPF_PROG_TEST_RUN; @netns (a netns
   * file) is where ctx's ifindex and the program's FIB lookups resolve.
   */
  testRun(data: Buffer, opts: { ctx?: Buffer; repeat?: number; netns?: string } = {}): Promise<TestRunResult> {
    return this.raw.testRun({ data, ...opts });
  }

  async attachTc(opts: TcAttachOptions): Promise<BpfLink> {
    return new BpfLink(await this.raw.attachTc(opts));
  }

  /** A tracing program (tp_btf, fentry) to what its section names. */
  async attachTracing(): Promise<BpfLink> {
    return new BpfLink(await this.raw.attachTracing());
  }

  async attachXdp(opts: XdpAttachOptions): Promise<BpfLink> {
    return new BpfLink(await this.raw.attachXdp(opts));
  }

  pin(path: string): Promise<void> {
    return this.raw.pin(path);
  }

  close(): void {
    this.raw.close();
  }
}

export class BpfObject {
  private constructor(
    private readonly raw: RawObject,
    readonly path: string,
  ) {}

  /** Opens @path and applies knobs; the object is not in the kernel until load(). */
  static async open(path: string, opts: OpenOptions = {}): Promise<BpfObject> {
    installLibbpfLogger();
    const raw = await addon().BpfObject.open(path, opts.pinRoot ? { pinRoot: opts.pinRoot } : {});
    const obj = new BpfObject(raw, path);
    try {
      for (const [name, value] of Object.entries(opts.consts ?? {})) obj.setConst(name, value);
      for (const [name, n] of Object.entries(opts.maxEntries ?? {})) raw.setMaxEntries(name, n);
    } catch (e) {
      raw.close();
      throw e;
    }
    return obj;
  }

  /** open() then load(). */
  static async load(path: string, opts: OpenOptions = {}): Promise<BpfObject> {
    const obj = await BpfObject.open(path, opts);
    try {
      await obj.load();
    } catch (e) {
      obj.close();
      throw e;
    }
    return obj;
  }

  consts(): { name: string; size: number }[] {
    return this.raw.consts();
  }

  setConst(name: string, value: ConstValue): void {
    const known = this.raw.consts();
    const knob = known.find((k) => k.name === name);
    if (!knob) {
      throw new TypeError(`${this.path} has no knob '${name}' (knobs: ${known.map((k) => k.name).join(', ') || 'none'})`);
    }
    this.raw.setConst(name, encodeConst(name, value, knob.size));
  }

  load(): Promise<void> {
    return this.raw.load();
  }

  /** The maps and their layouts (before load: as they will be created, or as a pin they reuse must be). */
  maps(): RawMapDef[] {
    return this.raw.maps();
  }

  map<K, V>(name: string, key: Codec<K>, value: Codec<V>): BpfMap<K, V> {
    return new BpfMap(this.raw.map(name), key, value);
  }

  perCpuMap<K, V>(name: string, key: Codec<K>, value: Codec<V>): PerCpuMap<K, V> {
    return new PerCpuMap(this.raw.map(name), key, value);
  }

  /** The raw map, for ring buffers and maps without a codec. */
  rawMap(name: string) {
    return this.raw.map(name);
  }

  programs(): { name: string; section: string; type: string }[] {
    return this.raw.programs();
  }

  program(name: string): BpfProgram {
    return new BpfProgram(this.raw.program(name));
  }

  /** Frees the object; maps, programs, pins and attachments taken from it stay. */
  close(): void {
    this.raw.close();
  }
}
