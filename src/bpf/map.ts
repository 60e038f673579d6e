/** Typed access to a BPF map: keys and values go through codecs from abi.ts. */
import { addon, type RawMap, type RawMapInfo } from '../native/addon.js';
import type { Codec } from './codec.js';

export const UpdateFlags = { Any: 0, NoExist: 1, Exist: 2 } as const;

abstract class MapBase<K> {
  readonly info: RawMapInfo;

  protected constructor(
    protected readonly raw: RawMap,
    protected readonly key: Codec<K>,
    valueSize: number,
    valueName: string,
  ) {
    this.info = raw.info();
    if (key.size !== this.info.keySize) {
      throw new TypeError(
        `map '${this.info.name}': key codec ${key.name} is ${key.size} bytes, the map's key is ${this.info.keySize}`,
      );
    }
    if (valueSize !== this.info.valueSize) {
      throw new TypeError(
        `map '${this.info.name}': value codec ${valueName} is ${valueSize} bytes, the map's value is ${this.info.valueSize}`,
      );
    }
  }

  get name(): string {
    return this.info.name;
  }

  delete(k: K): Promise<boolean> {
    return this.raw.delete(this.key.encode(k));
  }

  deleteBatch(keys: K[]): Promise<number> {
    return this.raw.deleteBatch(Buffer.concat(keys.map((k) => this.key.encode(k))));
  }

  pin(path: string): Promise<void> {
    return this.raw.pin(path);
  }

  close(): void {
    this.raw.close();
  }
}

/** A map with one value per key. */
export class BpfMap<K, V> extends MapBase<K> {
  constructor(raw: RawMap, key: Codec<K>, private readonly value: Codec<V>) {
    super(raw, key, value.size, value.name);
    if (this.info.percpu) throw new TypeError(`map '${this.info.name}' is per-CPU: use PerCpuMap`);
  }

  static async fromPin<K, V>(path: string, key: Codec<K>, value: Codec<V>): Promise<BpfMap<K, V>> {
    return new BpfMap(await addon().openPinnedMap(path), key, value);
  }

  async lookup(k: K): Promise<V | null> {
    const v = await this.raw.lookup(this.key.encode(k));
    return v ? this.value.decode(v) : null;
  }

  update(k: K, v: V, flags: number = UpdateFlags.Any): Promise<void> {
    return this.raw.update(this.key.encode(k), this.value.encode(v), flags);
  }

  updateBatch(entries: [K, V][], flags: number = UpdateFlags.Any): Promise<number> {
    const keys = Buffer.concat(entries.map(([k]) => this.key.encode(k)));
    const values = Buffer.concat(entries.map(([, v]) => this.value.encode(v)));
    return this.raw.updateBatch(keys, values, flags);
  }

  async entries(): Promise<[K, V][]> {
    const { keys, values, count } = await this.raw.entries();
    const out: [K, V][] = [];
    for (let i = 0; i < count; i++) {
      out.push([this.key.decode(keys, i * this.key.size), this.value.decode(values, i * this.value.size)]);
    }
    return out;
  }
}

/** A per-CPU map: every lookup returns one value per possible CPU. */
export class PerCpuMap<K, V> extends MapBase<K> {
  private readonly stride: number;

  constructor(raw: RawMap, key: Codec<K>, private readonly value: Codec<V>) {
    super(raw, key, value.size, value.name);
    if (!this.info.percpu) throw new TypeError(`map '${this.info.name}' is not per-CPU: use BpfMap`);
    this.stride = Math.ceil(value.size / 8) * 8;
  }

  static async fromPin<K, V>(path: string, key: Codec<K>, value: Codec<V>): Promise<PerCpuMap<K, V>> {
    return new PerCpuMap(await addon().openPinnedMap(path), key, value);
  }

  private split(buf: Buffer, base = 0): V[] {
    const out: V[] = [];
    for (let cpu = 0; cpu < this.info.ncpus; cpu++) out.push(this.value.decode(buf, base + cpu * this.stride));
    return out;
  }

  async lookup(k: K): Promise<V[] | null> {
    const v = await this.raw.lookup(this.key.encode(k));
    return v ? this.split(v) : null;
  }

  /** Writes the same value on every CPU. */
  update(k: K, v: V, flags: number = UpdateFlags.Any): Promise<void> {
    const buf = Buffer.alloc(this.info.valueBytes);
    const enc = this.value.encode(v);
    for (let cpu = 0; cpu < this.info.ncpus; cpu++) enc.copy(buf, cpu * this.stride);
    return this.raw.update(this.key.encode(k), buf, flags);
  }

  async entries(): Promise<[K, V[]][]> {
    const { keys, values, count } = await this.raw.entries();
    const out: [K, V[]][] = [];
    for (let i = 0; i < count; i++) {
      out.push([this.key.decode(keys, i * this.key.size), this.split(values, i * this.info.valueBytes)]);
    }
    return out;
  }
}
