/**
 * What the CNI specification fixes for a plugin: the versions berth-cni
 * speaks, the well-known error codes, and the environment a runtime invokes
 * it with (CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS,
 * CNI_PATH), checked with messages that name the variable and its value.
 */

export const SUPPORTED_VERSIONS = ['0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const LATEST: CniVersion = '1.1.0';

/** The spec's well-known error codes (1-99) and berth-cni's own (100 and up). */
export const CODE = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnvironment: 4,
  ioFailure: 5,
  decodeFailure: 6,
  invalidConfig: 7,
  tryAgainLater: 11,
  /** STATUS: the plugin cannot serve ADD (berthd unreachable or not ready) */
  pluginNotAvailable: 50,
  pluginLimitedResources: 51,
  /** berth's own: berthd failed the request */
  berthdFailed: 100,
  /** berth's own: CHECK found the attachment not as ADD left it */
  checkFailed: 101,
} as const;

export class CniError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly details?: string,
  ) {
    super(message);
  }
}

export const VERBS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'] as const;
export type Verb = (typeof VERBS)[number];

/** "1.0.0" >= "0.4.0"? For the three-part versions of the spec. */
export function versionAtLeast(v: string, min: string): boolean {
  const a = v.split('.').map(Number);
  const b = min.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  return true;
}

export interface CniEnv {
  command: Verb;
  containerId: string;
  netns: string;
  ifname: string;
  args: Record<string, string>;
  path: string[];
}

const CONTAINER_ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Keys of CNI_ARGS runtimes commonly pass that berth-cni accepts and does not act on. */
const IGNORED_ARGS = ['K8S_POD_NAME', 'K8S_POD_NAMESPACE', 'K8S_POD_INFRA_CONTAINER_ID', 'K8S_POD_UID'];

function parseCniArgs(raw: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of raw.split(';')) {
    if (!pair) continue;
    const i = pair.indexOf('=');
    if (i <= 0) throw new CniError(CODE.invalidEnvironment, `CNI_ARGS '${raw}': '${pair}' is not KEY=VALUE`);
    out[pair.slice(0, i)] = pair.slice(i + 1);
  }
  const ignoreUnknown = ['1', 'true'].includes((out.IgnoreUnknown ?? '').toLowerCase());
  for (const k of Object.keys(out)) {
    if (k === 'IgnoreUnknown' || k === 'IP' || IGNORED_ARGS.includes(k) || ignoreUnknown) continue;
    throw new CniError(CODE.invalidEnvironment, `CNI_ARGS '${raw}': unknown key '${k}' (berth-cni knows IP; add IgnoreUnknown=1 to pass others)`);
  }
  return out;
}

/** Reads and checks the environment for the verb it names; only what that verb needs is required. */
export function readEnv(env: NodeJS.ProcessEnv): CniEnv {
  const command = env.CNI_COMMAND ?? '';
  if (!(VERBS as readonly string[]).includes(command)) {
    throw new CniError(CODE.invalidEnvironment, `CNI_COMMAND '${command}' is not one of ${VERBS.join(', ')}`);
  }
  const verb = command as Verb;
  const out: CniEnv = { command: verb, containerId: env.CNI_CONTAINERID ?? '', netns: env.CNI_NETNS ?? '', ifname: env.CNI_IFNAME ?? '', args: {}, path: [] };
  if (verb === 'VERSION') return out;
  const need = (name: string, value: string) => {
    if (!value) throw new CniError(CODE.invalidEnvironment, `${name} is not set: ${verb} needs it`);
  };
  need('CNI_PATH', env.CNI_PATH ?? '');
  out.path = (env.CNI_PATH ?? '').split(':').filter(Boolean);
  if (verb === 'GC' || verb === 'STATUS') return out;
  need('CNI_CONTAINERID', out.containerId);
  if (!CONTAINER_ID_RE.test(out.containerId)) {
    throw new CniError(CODE.invalidEnvironment, `CNI_CONTAINERID '${out.containerId}' is invalid: it must start with a letter or digit, followed by letters, digits, '_', '.' or '-'`);
  }
  need('CNI_IFNAME', out.ifname);
  const ifn = out.ifname;
  if (ifn.length > 15 || ifn === '.' || ifn === '..' || /[/:\s]/.test(ifn)) {
    throw new CniError(CODE.invalidEnvironment, `CNI_IFNAME '${ifn}' is invalid: 1 to 15 characters, not '.' or '..', without '/', ':' or whitespace`);
  }
  if (verb !== 'DEL') need('CNI_NETNS', out.netns);
  if (out.netns && !out.netns.startsWith('/')) throw new CniError(CODE.invalidEnvironment, `CNI_NETNS '${out.netns}' is not an absolute path`);
  out.args = parseCniArgs(env.CNI_ARGS ?? '');
  return out;
}
