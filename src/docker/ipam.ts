/**
 * Docker's IpamDriver calls mapped onto berth's IPAM: a pool per
 * RequestPool (kept in berth's store by pool id), addresses from it with
 * berth's allocator. The gateway is requested as an address with
 * RequestAddressType com.docker.network.gateway.
 */
import type { Logger } from 'pino';
import type { DockerEngine } from './engine.js';
import { badRequest } from '../errors.js';
import { str, type PluginHandler } from './wire.js';

export const ADDRESS_SPACE = { local: 'berth-local', global: 'berth-global' };
const GATEWAY_TYPE = 'com.docker.network.gateway';

function obj(body: Record<string, unknown>, key: string): Record<string, unknown> {
  const v = body[key];
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

export function ipamDriverRoutes(c: DockerEngine, _log: Logger): Record<string, PluginHandler> {
  return {
    '/IpamDriver.GetCapabilities': () => ({ RequiresMACAddress: false, RequiresRequestReplay: false }),
    '/IpamDriver.GetDefaultAddressSpaces': () => ({ LocalDefaultAddressSpace: ADDRESS_SPACE.local, GlobalDefaultAddressSpace: ADDRESS_SPACE.global }),
    '/IpamDriver.RequestPool': async (b) => {
      const pool = str(b, 'Pool');
      const subPool = str(b, 'SubPool');
      if (subPool && !pool) throw badRequest('SubPool given without Pool');
      const rec = await c.ipamRequestPool({ addressSpace: str(b, 'AddressSpace') || ADDRESS_SPACE.local, ...(pool ? { pool } : {}), ...(subPool ? { subPool } : {}), v6: b.V6 === true });
      return { PoolID: rec.id, Pool: rec.subnet, Data: {} };
    },
    '/IpamDriver.ReleasePool': async (b) => {
      await c.ipamReleasePool(str(b, 'PoolID', true));
      return {};
    },
    '/IpamDriver.RequestAddress': async (b) => {
      const opts = obj(b, 'Options');
      const addr = str(b, 'Address');
      const address = await c.ipamRequestAddress(str(b, 'PoolID', true), addr || undefined, opts.RequestAddressType === GATEWAY_TYPE);
      return { Address: address, Data: {} };
    },
    '/IpamDriver.ReleaseAddress': async (b) => {
      await c.ipamReleaseAddress(str(b, 'PoolID', true), str(b, 'Address', true));
      return {};
    },
  };
}
