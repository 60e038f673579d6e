/**
 * Network driver options (`-o KEY=VALUE`): the keys each driver takes, their
 * Docker long-form aliases, and validation that names the bad key or value.
 */
import { badRequest } from '../errors.js';
import type { NetworkDriverName } from '../store/model.js';
import { parsePublishAllow } from '../datapath/publish-policy.js';

type Check = (v: string) => string | null; // normalised value, or null when invalid

const bool: Check = (v) => (['true', 'false'].includes(v.toLowerCase()) ? v.toLowerCase() : null);
const mtu: Check = (v) => (/^\d+$/.test(v) && Number(v) >= 68 && Number(v) <= 65535 ? String(Number(v)) : null);
export const IFNAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,14}$/;
const ifname: Check = (v) => (IFNAME_RE.test(v) ? v : null);
const oneOf = (...xs: string[]): Check => (v) => (xs.includes(v) ? v : null);
// Throws naming the bad prefix itself (a long list is hard to read back).
const prefixes: Check = (v) => parsePublishAllow(v, 'option publish.allow').join(',');
const PUBLISH_ALLOW = { check: prefixes, expect: 'CIDR[,CIDR...]: the only sources that reach published ports of this network (besides the host\'s 127.0.0.1/::1)' };
const intIn = (lo: number, hi: number): Check => (v) => (/^\d+$/.test(v) && Number(v) >= lo && Number(v) <= hi ? String(Number(v)) : null);

const KEYS: Record<NetworkDriverName, Record<string, { check: Check; expect: string }>> = {
  bridge: {
    icc: { check: bool, expect: 'true or false' },
    masquerade: { check: bool, expect: 'true or false' },
    mtu: { check: mtu, expect: 'a number from 68 to 65535' },
    'bridge.name': { check: ifname, expect: 'an interface name of at most 15 characters' },
    router: { check: oneOf('none', 'external'), expect: 'none or external (external: a real router serves the network; its sandboxes keep accepting router advertisements and redirects)' },
    egress: { check: oneOf('allow', 'deny'), expect: 'allow or deny (deny: sandboxes without --egress-allow reach nothing outside their networks)' },
    'publish.allow': PUBLISH_ALLOW,
  },
  macvlan: {
    parent: { check: ifname, expect: 'an interface name' },
    'macvlan.mode': { check: oneOf('bridge', 'private', 'vepa', 'passthru'), expect: 'bridge, private, vepa or passthru' },
    router: { check: oneOf('none', 'external'), expect: 'none or external (external: a real router serves the network; its sandboxes keep accepting router advertisements and redirects)' },
    mtu: { check: mtu, expect: 'a number from 68 to 65535' },
  },
  overlay: {
    'vxlan.id': { check: intIn(1, 16777215), expect: 'a VXLAN network identifier from 1 to 16777215' },
    'vxlan.port': { check: intIn(1, 65535), expect: 'a UDP port from 1 to 65535' },
    icc: { check: bool, expect: 'true or false (false: only links reach a sandbox, on this host and across hosts)' },
    router: { check: oneOf('none', 'external'), expect: 'none or external (external: a real router serves the network; its sandboxes keep accepting router advertisements and redirects)' },
    egress: { check: oneOf('allow', 'deny'), expect: 'allow or deny (deny: sandboxes without --egress-allow reach nothing outside their networks)' },
    mtu: { check: mtu, expect: 'a number from 68 to 65535' },
    'publish.allow': PUBLISH_ALLOW,
  },
  routed: {
    'routed.block': { check: (v) => (/^\/?\d{1,2}$/.test(v) ? `/${v.replace('/', '')}` : null), expect: 'a prefix length such as /26 (the size of each host\'s block)' },
    icc: { check: bool, expect: 'true or false' },
    masquerade: { check: bool, expect: 'true or false' },
    router: { check: oneOf('none', 'external'), expect: 'none or external (external: a real router serves the network; its sandboxes keep accepting router advertisements and redirects)' },
    egress: { check: oneOf('allow', 'deny'), expect: 'allow or deny (deny: sandboxes without --egress-allow reach nothing outside their networks)' },
    mtu: { check: mtu, expect: 'a number from 68 to 65535' },
    'publish.allow': PUBLISH_ALLOW,
  },
};

/** Docker's long option names, accepted for muscle memory and scripts. */
const ALIASES: Record<string, string> = {
  'com.docker.network.bridge.enable_icc': 'icc',
  'com.docker.network.bridge.enable_ip_masquerade': 'masquerade',
  'com.docker.network.driver.mtu': 'mtu',
  'com.docker.network.bridge.name': 'bridge.name',
  macvlan_mode: 'macvlan.mode',
  'com.docker.network.driver.overlay.vxlanid_list': 'vxlan.id',
};

export function validateOptions(driver: NetworkDriverName, raw: Record<string, string>): Record<string, string> {
  const known = KEYS[driver];
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    const key = ALIASES[k] ?? k;
    const spec = known[key];
    if (!spec) {
      throw badRequest(`unknown option '${k}' for the ${driver} driver (valid: ${Object.keys(known).join(', ')})`);
    }
    const norm = spec.check(String(v));
    if (norm === null) throw badRequest(`option ${k}=${v} is invalid: expected ${spec.expect}`);
    out[key] = norm;
  }
  return out;
}

/** Parses "KEY=VALUE" strings as the CLI receives them. */
export function parseKeyValues(items: string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const i = item.indexOf('=');
    if (i <= 0) throw badRequest(`${what} '${item}' is not KEY=VALUE`);
    out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}
