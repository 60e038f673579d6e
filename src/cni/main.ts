#!/usr/bin/env node
/**
 * berth-cni: berth as a CNI plugin. It holds no state: every verb is a
 * request to berthd over its API socket (the configuration's "socket",
 * else BERTH_SOCKET, else the default), and berthd owns addresses, the
 * datapath, DNS and published ports. It loads neither the native addon nor
 * the logger, so a runtime's call costs node's start-up and one request.
 * Results and errors go to stdout as the spec says; an error exits 1.
 */
import { ApiClient } from '../api/client.cjs';
import { DEFAULT_SOCKET } from '../api/defaults.cjs';
import { BerthError } from '../errors.cjs';
import type { AttachmentView } from '../controller/attachments.js';
import { attachRequest, checkVersion, decodeStdin, parseConfig, replyVersion } from './config.js';
import { expectationOf, renderResult, type DnsRequest } from './result.js';
import { CODE, CniError, LATEST, readEnv, SUPPORTED_VERSIONS, versionAtLeast, type CniEnv, type Verb } from './spec.js';

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return '';
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** A berthd refusal or failure as the CNI error closest to it for @verb. */
function fromBerthd(e: unknown, verb: Verb, socket: string): CniError {
  if (!(e instanceof BerthError)) return new CniError(CODE.berthdFailed, `berthd at ${socket}: ${(e as Error).message}`);
  switch (e.kind) {
    case 'unavailable':
      return new CniError(verb === 'STATUS' ? CODE.pluginNotAvailable : CODE.tryAgainLater, e.message);
    case 'not-found':
      return new CniError(CODE.unknownContainer, e.message);
    case 'bad-request':
      return new CniError(CODE.invalidConfig, e.message);
    case 'conflict':
      return new CniError(verb === 'CHECK' ? CODE.checkFailed : CODE.invalidConfig, e.message);
    default:
      return new CniError(CODE.berthdFailed, `berthd failed the ${verb}: ${e.message}`);
  }
}

/** Runs one verb; resolves with what goes to stdout ('' for nothing). */
async function run(env: CniEnv, stdin: string): Promise<string> {
  if (env.command === 'VERSION') {
    const raw = stdin.trim() ? decodeStdin(stdin) : {};
    return JSON.stringify({ cniVersion: replyVersion(raw), supportedVersions: SUPPORTED_VERSIONS });
  }
  const raw = decodeStdin(stdin);
  checkVersion(raw);
  const conf = parseConfig(raw);
  if ((env.command === 'STATUS' || env.command === 'GC') && !versionAtLeast(conf.cniVersion, '1.1.0')) {
    throw new CniError(CODE.incompatibleVersion, `${env.command} needs cniVersion 1.1.0; the configuration says ${conf.cniVersion}`);
  }
  const socket = conf.socket ?? process.env.BERTH_SOCKET ?? DEFAULT_SOCKET;
  const api = new ApiClient(socket);
  const key = { network: conf.name, containerId: env.containerId, ifname: env.ifname };
  // Everything the configuration says is checked before berthd is asked anything.
  const req = env.command === 'ADD' ? attachRequest(conf, env) : undefined;
  const expect = env.command === 'CHECK' ? expectationOf(conf.prevResult, env.ifname, env.netns) : undefined;
  try {
    switch (env.command) {
      case 'ADD': {
        const view = await api.call<AttachmentView>('POST', '/v1/cni/attachments', req);
        const dns = (conf.runtimeConfig.dns ?? {}) as DnsRequest;
        return JSON.stringify(renderResult(conf.cniVersion, view, dns, conf.prevResult));
      }
      case 'DEL':
        await api.call('DELETE', '/v1/cni/attachments', key);
        return '';
      case 'CHECK':
        await api.call('POST', '/v1/cni/check', { ...key, netns: env.netns, expect });
        return '';
      case 'GC':
        if (!Array.isArray(conf.validAttachments)) {
          throw new CniError(CODE.invalidConfig, `GC needs "cni.dev/valid-attachments" (a list of {containerID, ifname}); got ${JSON.stringify(conf.validAttachments) ?? 'none'}`);
        }
        await api.call('POST', '/v1/cni/gc', { network: conf.name, valid: conf.validAttachments });
        return '';
      case 'STATUS':
        await api.call('GET', '/v1/info');
        return '';
    }
  } catch (e) {
    if (e instanceof CniError) throw e;
    throw fromBerthd(e, env.command, socket);
  }
  return '';
}

async function main(): Promise<number> {
  let stdin = '';
  try {
    stdin = await readStdin();
  } catch (e) {
    process.stdout.write(JSON.stringify({ cniVersion: LATEST, code: CODE.ioFailure, msg: `cannot read the configuration on stdin: ${(e as Error).message}` }) + '\n');
    return 1;
  }
  let version: string = LATEST;
  try {
    version = replyVersion(JSON.parse(stdin));
  } catch {
    /* not JSON: the error says so below */
  }
  try {
    const out = await run(readEnv(process.env), stdin);
    if (out) process.stdout.write(out + '\n');
    return 0;
  } catch (e) {
    const err = e instanceof CniError ? e : new CniError(CODE.berthdFailed, (e as Error).message);
    process.stdout.write(JSON.stringify({ cniVersion: version, code: err.code, msg: err.message, ...(err.details ? { details: err.details } : {}) }) + '\n');
    return 1;
  }
}

process.exitCode = await main();
