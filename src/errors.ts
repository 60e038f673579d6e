/**
 * The ESM face of errors.cts, where BerthError is defined: CommonJS so that
 * the CLI's start-up path (the API client) can use it without node's ES
 * module loader. Both names give the same class.
 */
export { BerthError, badRequest, notFound, conflict, unavailable, type ErrorKind } from './errors.cjs';
