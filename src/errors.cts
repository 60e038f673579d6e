/**
 * One error type for every refusal berth makes, in any layer, with a kind the
 * API maps to an HTTP status and the CLI to its message. Messages name the
 * bad value and, where it helps, what to do.
 */
export type ErrorKind = 'bad-request' | 'not-found' | 'conflict' | 'unavailable' | 'internal';

const STATUS: Record<ErrorKind, number> = {
  'bad-request': 400,
  'not-found': 404,
  conflict: 409,
  unavailable: 503,
  internal: 500,
};

export class BerthError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'BerthError';
  }

  get status(): number {
    return STATUS[this.kind];
  }

  static fromStatus(status: number, message: string): BerthError {
    const kind = (Object.entries(STATUS).find(([, s]) => s === status)?.[0] ?? 'internal') as ErrorKind;
    return new BerthError(kind, message);
  }
}

export const badRequest = (m: string) => new BerthError('bad-request', m);
export const notFound = (m: string) => new BerthError('not-found', m);
export const conflict = (m: string) => new BerthError('conflict', m);
export const unavailable = (m: string) => new BerthError('unavailable', m);
