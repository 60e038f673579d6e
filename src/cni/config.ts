/**
 * The network configuration a runtime streams to berth-cni on stdin: checked
 * field by field (an unknown field is refused naming it and its value, as
 * the spec allows), then turned into berthd's attach request.
 */
import { CODE, CniError, LATEST, SUPPORTED_VERSIONS, type CniEnv, type CniVersion } from './spec.js';
import type { AttachRequest, CniNetworkSpec, CniPortMapping } from '../controller/attachments.js';

export interface CniConfig {
  cniVersion: CniVersion;
  /** the CNI network name: part of every attachment's key */
  name: string;
  /** berthd's API socket, when the configuration names one */
  socket?: string;
  spec: CniNetworkSpec;
  runtimeConfig: Record<string, unknown>;
  args: Record<string, unknown>;
  prevResult?: Record<string, unknown>;
  validAttachments?: unknown;
  raw: Record<string, unknown>;
}

/** Fields of the spec and of its conventions, which any plugin configuration may carry. */
const STANDARD = new Set([
  'cniVersion', 'cniVersions', 'name', 'type', 'capabilities', 'args', 'runtimeConfig', 'prevResult', 'dns',
  'disableCheck', 'disableGC', 'cni.dev/valid-attachments', 'cni.dev/attachments',
]);
/** berth's own fields. */
const BERTH = new Set(['network', 'subnet', 'subnet6', 'gateway', 'icc', 'internal', 'mtu', 'socket', 'holdPorts']);

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
/** A container name berthd takes as an alias (its sandbox-name rule). */
const POD_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

const show = (v: unknown) => JSON.stringify(v) ?? String(v);

/** The version a reply to @input is written in: its own when berth-cni speaks it, else the latest. */
export function replyVersion(input: unknown): CniVersion {
  const v = (input as { cniVersion?: unknown } | null)?.cniVersion;
  return (SUPPORTED_VERSIONS as readonly unknown[]).includes(v) ? (v as CniVersion) : LATEST;
}

export function decodeStdin(text: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new CniError(CODE.decodeFailure, `the network configuration on stdin is not JSON: ${(e as Error).message}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new CniError(CODE.decodeFailure, `the network configuration on stdin is not a JSON object: ${text.slice(0, 80)}`);
  return parsed as Record<string, unknown>;
}

export function checkVersion(raw: Record<string, unknown>): CniVersion {
  const v = raw.cniVersion;
  if (!(SUPPORTED_VERSIONS as readonly unknown[]).includes(v)) {
    const what = v === undefined ? 'cniVersion is missing' : `cniVersion ${show(v)} is not supported`;
    throw new CniError(CODE.incompatibleVersion, `${what}: berth-cni speaks ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  return v as CniVersion;
}

function optObject(raw: Record<string, unknown>, key: string): Record<string, unknown> {
  const v = raw[key];
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new CniError(CODE.invalidConfig, `"${key}": ${show(v)} is not an object`);
  return v as Record<string, unknown>;
}

export function parseConfig(raw: Record<string, unknown>): CniConfig {
  const cniVersion = checkVersion(raw);
  for (const [k, v] of Object.entries(raw)) {
    if (k === 'ipam') throw new CniError(CODE.unsupportedField, `unsupported field "ipam": ${show(v)}: berthd allocates the addresses itself (give "subnet" and, per container, runtimeConfig "ips")`);
    if (!STANDARD.has(k) && !BERTH.has(k)) throw new CniError(CODE.unsupportedField, `unsupported field "${k}": ${show(v)} (berth takes ${[...BERTH].join(', ')})`);
  }
  if (typeof raw.name !== 'string' || !NAME_RE.test(raw.name)) {
    throw new CniError(CODE.invalidConfig, `"name": ${show(raw.name)} is not a valid network name: start with a letter or digit, then letters, digits, '_', '.' or '-'`);
  }
  const network = raw.network ?? raw.name;
  if (typeof network !== 'string') throw new CniError(CODE.invalidConfig, `"network": ${show(network)} is not a string`);
  if (raw.socket !== undefined && (typeof raw.socket !== 'string' || !raw.socket.startsWith('/'))) {
    throw new CniError(CODE.invalidConfig, `"socket": ${show(raw.socket)} is not an absolute path to berthd's API socket`);
  }
  const spec: CniNetworkSpec = { name: network };
  for (const k of ['subnet', 'subnet6', 'gateway'] as const) {
    if (raw[k] === undefined) continue;
    if (typeof raw[k] !== 'string') throw new CniError(CODE.invalidConfig, `"${k}": ${show(raw[k])} is not a string`);
    spec[k] = raw[k];
  }
  for (const k of ['icc', 'internal'] as const) {
    if (raw[k] === undefined) continue;
    if (typeof raw[k] !== 'boolean') throw new CniError(CODE.invalidConfig, `"${k}": ${show(raw[k])} is not true or false`);
    spec[k] = raw[k];
  }
  if (raw.mtu !== undefined) {
    if (typeof raw.mtu !== 'number') throw new CniError(CODE.invalidConfig, `"mtu": ${show(raw.mtu)} is not a number`);
    spec.mtu = raw.mtu;
  }
  const prev = raw.prevResult;
  if (prev !== undefined && prev !== null && (typeof prev !== 'object' || Array.isArray(prev))) throw new CniError(CODE.invalidConfig, `"prevResult": ${show(prev)} is not an object`);
  return {
    cniVersion, name: raw.name, ...(raw.socket ? { socket: raw.socket as string } : {}), spec,
    runtimeConfig: optObject(raw, 'runtimeConfig'), args: optObject(raw, 'args'),
    ...(prev ? { prevResult: prev as Record<string, unknown> } : {}),
    validAttachments: raw['cni.dev/valid-attachments'] ?? raw['cni.dev/attachments'],
    raw,
  };
}

/** runtimeConfig.aliases as a list for this network: a list, or the conventions' map keyed by network name. */
function aliasesFor(conf: CniConfig): string[] {
  const a = conf.runtimeConfig.aliases;
  if (a === undefined || a === null) return [];
  const list = Array.isArray(a) ? a : typeof a === 'object' ? ((a as Record<string, unknown>)[conf.name] ?? (a as Record<string, unknown>)[conf.spec.name] ?? []) : a;
  if (!Array.isArray(list) || list.some((x) => typeof x !== 'string')) throw new CniError(CODE.invalidConfig, `runtimeConfig.aliases: ${show(a)} is not a list of names (or a map of network name to such a list)`);
  return list as string[];
}

function stringList(v: unknown, what: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new CniError(CODE.invalidConfig, `${what}: ${show(v)} is not a list of strings`);
  return v as string[];
}

/** The attach request for ADD: the key from the environment, the rest from the configuration. */
export function attachRequest(conf: CniConfig, env: CniEnv): AttachRequest {
  const rc = conf.runtimeConfig;
  const cniArgs = optObject(conf.args, 'cni');
  const berthArgs = optObject(conf.args, 'berth');
  const ips = [...stringList(rc.ips, 'runtimeConfig.ips'), ...stringList(cniArgs.ips, 'args.cni.ips'), ...(env.args.IP ? env.args.IP.split(',') : [])];
  const mapping = rc.portMappings;
  if (mapping !== undefined && !Array.isArray(mapping)) throw new CniError(CODE.invalidConfig, `runtimeConfig.portMappings: ${show(mapping)} is not a list`);
  if (rc.mac !== undefined && typeof rc.mac !== 'string') throw new CniError(CODE.invalidConfig, `runtimeConfig.mac: ${show(rc.mac)} is not a string`);
  return {
    network: conf.name, containerId: env.containerId, ifname: env.ifname, netns: env.netns, spec: conf.spec,
    ...(mapping ? { portMappings: mapping as CniPortMapping[] } : {}),
    // Podman passes the container's name as K8S_POD_NAME (the dnsname plugin's source of names): it is a DNS name too.
    aliases: [...aliasesFor(conf), ...(env.args.K8S_POD_NAME && POD_NAME_RE.test(env.args.K8S_POD_NAME) ? [env.args.K8S_POD_NAME] : [])],
    ...(ips.length ? { ips: [...new Set(ips)] } : {}),
    ...(rc.mac ? { mac: rc.mac as string } : {}),
    ...(conf.raw.holdPorts !== undefined ? { holdPorts: conf.raw.holdPorts as boolean } : {}),
    ...(berthArgs.egressAllow !== undefined ? { egressAllow: stringList(berthArgs.egressAllow, 'args.berth.egressAllow') } : {}),
  };
}
