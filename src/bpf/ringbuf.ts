/** Records from a BPF ring buffer, decoded and delivered to a callback. */
import { addon, type RawMap } from '../native/addon.js';
import type { Codec } from './codec.js';

export class RingBuffer<T> {
  private readonly rb: { close(): void; stats(): { delivered: number; lost: number } };

  constructor(map: RawMap, codec: Codec<T>, onEvent: (event: T) => void) {
    const info = map.info();
    if (info.type !== 'ringbuf') throw new TypeError(`map '${info.name}' is a ${info.type}, not a ringbuf`);
    this.rb = new (addon().RingBuffer)(map, (rec) => {
      if (rec.length >= codec.size) onEvent(codec.decode(rec));
    });
  }

  /** delivered: records handed to JS; lost: records JS was too far behind to take. */
  stats(): { delivered: number; lost: number } {
    return this.rb.stats();
  }

  close(): void {
    this.rb.close();
  }
}
