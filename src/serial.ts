/** A queue running tasks one at a time, in arrival order; a failed task does not stop the next. The controller and both datapath backends use it. */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const r = this.tail.then(fn, fn);
    this.tail = r.catch(() => undefined);
    return r;
  }
}
