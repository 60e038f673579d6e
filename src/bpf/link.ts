/** A program attached to an interface (tcx, clsact or XDP). */
import { addon, type RawLink, type RawLinkInfo } from '../native/addon.js';

export class BpfLink {
  constructor(private readonly raw: RawLink) {}

  /** Adopts a tcx/XDP link pinned by an earlier process. */
  static async fromPin(path: string): Promise<BpfLink> {
    return new BpfLink(await addon().openPinnedLink(path));
  }

  get info(): RawLinkInfo {
    return this.raw.info();
  }

  /** Keeps the attachment in place after this process exits (tcx and XDP). */
  pin(path: string): Promise<void> {
    return this.raw.pin(path);
  }

  /** Removes exactly this attachment; other programs on the hook stay. */
  detach(): Promise<void> {
    return this.raw.detach();
  }

  /** Drops our descriptor; an unpinned tcx/XDP link then detaches itself. */
  close(): void {
    this.raw.close();
  }
}
