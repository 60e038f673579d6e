/** The plugin protocol's shapes, shared by the network and IPAM driver routes. */
import { badRequest } from '../errors.js';

/** One protocol call: the decoded request body in, the response object out. */
export type PluginHandler = (body: Record<string, unknown>) => Promise<object> | object;

/** String field @key of a request body ('' when absent and not @required). */
export function str(body: Record<string, unknown>, key: string, required = false): string {
  const v = body[key];
  if (v === undefined || v === null || v === '') {
    if (required) throw badRequest(`${key} missing`);
    return '';
  }
  if (typeof v !== 'string') throw badRequest(`${key} must be a string`);
  return v;
}
