#!/usr/bin/env node
/**
 * berthd: the daemon. Holds the state directory, serves the API on a unix
 * socket, runs the embedded DNS, and replays its state over the kernel on
 * start. Stopping it (SIGTERM) leaves sandboxes and their networking running.
 */
import { routedHops } from '../drivers/routed-underlay.js';
import { mkdir } from 'node:fs/promises';
import { existsSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';
import type { Server } from 'node:http';
import { setLogLevel, subsystemLogger } from '../log.js';
import { EmbeddedStore } from '../store/embedded.js';
import { Controller } from '../controller/controller.js';
import { BerthError } from '../errors.js';
import { DnsManager } from './dns.js';
import { DaemonLock, PinOwner } from './lock.js';
import { BPFFS_ROOT, ensureBpffs } from '../bpf/bpffs.js';
import { startApi } from '../api/server.js';
import { configReport, daemonCommand, formatConfig, resolveConfig, type EffectiveConfig } from './config.js';
import { doctor, type DatapathChoice } from '../doctor/doctor.js';
import { parsePrefix, parseIp } from '../ipam/addr.js';
import { createDatapath } from '../datapath/select.js';
import { PortHolder } from '../drivers/ports.js';
import { GlobalNetworks } from '../cluster/global.js';
import { startDockerPlugin } from '../docker/protocol.js';
import { joinCluster, type Joined } from '../cluster/join.js';
import { withClusterEndpoints } from '../cluster/names.js';
import { readFileSync } from 'node:fs';
import { Metrics } from '../metrics/metrics.js';
import { parseMetricsAddr, startMetricsServer } from '../metrics/server.js';
import { packageVersion } from '../package.cjs';
import { parsePublishAllow } from '../datapath/publish-policy.js';

export interface DaemonOptions {
  stateDir: string;
  socket: string;
  datapath: 'auto' | 'bpf' | 'nftables' | 'iptables';
  uplink?: string;
  logLevel: string;
  bip: string;
  fixedCidr?: string;
  bridge: string;
  dnsPort: number;
  resolvConf: string;
  driftCheckMs: number;
  /** serve Docker's network and IPAM driver plugin protocol on this unix socket */
  dockerPlugin?: string;
  /** 'embedded' (default) or etcd://HOST:PORT[,...]: the cluster store for global (overlay) networks */
  store?: string;
  advertiseAddr?: string;
  /** seconds another host's registration may stay lapsed before its endpoints are withdrawn here */
  hostGrace?: number;
  bpffs?: string;
  /** the eBPF datapath's connection table entries (two a flow) */
  ctMax?: number;
  /** the eBPF datapath's publish-table entries (one a published port or range, per family) */
  pubMax?: number;
  etcdCacert?: string;
  etcdCert?: string;
  etcdKey?: string;
  /** HOST:PORT: serve GET /metrics over TCP too (the unix socket always does) */
  metricsAddr?: string;
  /** CIDR[,CIDR...]: the operator's publish policy (the only sources that reach published ports) */
  publishAllow?: string;
}

async function chooseDatapath(requested: DaemonOptions['datapath']): Promise<DatapathChoice & { requested: string }> {
  const r = await doctor();
  const auto = r.datapath;
  if (requested === 'bpf' && auto.bpfMissing.length) {
    throw new BerthError('unavailable', `--datapath bpf: this host lacks ${auto.bpfMissing.join(', ')}; use --datapath nftables, iptables or auto`);
  }
  if (auto.choice === 'none' && requested === 'auto') throw new BerthError('unavailable', `no datapath: ${auto.reason}`);
  if (requested === 'iptables' && !r.tools.iptables.present) {
    throw new BerthError('unavailable', '--datapath iptables: iptables is not installed');
  }
  if (requested === 'nftables' && !r.tools.nft.present) {
    throw new BerthError('unavailable', '--datapath nftables: nft is not installed (install nftables)');
  }
  if (requested === 'auto') return { ...auto, requested };
  return { choice: requested, reason: `requested with --datapath ${requested}`, bpfCapable: auto.bpfCapable, bpfMissing: auto.bpfMissing, requested };
}

/** @config: where each option came from (berthd's command line); the API info reports it. */
export async function runDaemon(o: DaemonOptions, config?: EffectiveConfig): Promise<{ stop(): Promise<void> }> {
  setLogLevel(o.logLevel as never);
  const log = subsystemLogger('berthd');
  // --bip: the default bridge's gateway address with its prefix, as dockerd takes it.
  const bip = parsePrefix(o.bip, '--bip', true);
  const gateway = parseIp(o.bip.split('/')[0]!, '--bip').text;
  const metricsAddr = o.metricsAddr ? parseMetricsAddr(o.metricsAddr) : undefined;
  await mkdir(o.stateDir, { recursive: true, mode: 0o700 });
  await mkdir(dirname(o.socket), { recursive: true, mode: 0o750 });
  const lock = await DaemonLock.acquire(o.stateDir, o.socket);
  let server: Server | undefined;
  // saves are made durable behind the requests (EmbeddedStore.save): stop() waits for the last
  const store = new EmbeddedStore(o.stateDir);
  let plugin: Server | undefined;
  let metricsServer: Server | undefined;
  let dns: DnsManager | undefined;
  let drift: NodeJS.Timeout | undefined;
  let joined: Joined | undefined;
  let pins: PinOwner | undefined;
  try {
    const datapath = await chooseDatapath(o.datapath);
    const bpffs = o.bpffs ?? BPFFS_ROOT;
    const cluster = o.store !== undefined && o.store !== 'embedded';
    // The bpffs before anything that pins into it: the overlay (joining the cluster) and the datapath.
    if (datapath.choice === 'bpf' || cluster) await ensureBpffs(bpffs);
    // One berthd per pinned datapath: the bpf datapath, or its teardown when switching away, touches <bpffs>/berth.
    if (datapath.choice === 'bpf' || existsSync(join(bpffs, 'berth'))) pins = await PinOwner.acquire(bpffs, o.stateDir);
    if (cluster) {
      const file = (f?: string) => (f ? readFileSync(f) : undefined);
      const tls = { ...(o.etcdCacert ? { ca: file(o.etcdCacert)! } : {}), ...(o.etcdCert ? { cert: file(o.etcdCert)! } : {}), ...(o.etcdKey ? { key: file(o.etcdKey)! } : {}) };
      joined = await joinCluster({ stateDir: o.stateDir, store: o.store!, ...(o.advertiseAddr ? { advertiseAddr: o.advertiseAddr } : {}), ...(o.uplink ? { uplink: o.uplink } : {}), ...(o.hostGrace !== undefined ? { hostGrace: o.hostGrace } : {}), bpffs, tls, log: subsystemLogger('cluster') });
    }
    log.info({ datapath: datapath.choice, reason: datapath.reason }, 'datapath chosen');
    const dp = await createDatapath(datapath.choice, subsystemLogger('datapath'), { ...(o.bpffs ? { bpffs: o.bpffs } : {}), ...(o.ctMax !== undefined ? { ctMax: o.ctMax } : {}), ...(o.pubMax !== undefined ? { pubMax: o.pubMax } : {}) });
    let controller!: Controller;
    let metrics: Metrics | undefined;
    dns = new DnsManager(() => withClusterEndpoints(controller.snapshot(), joined?.cluster), subsystemLogger('dns'), o.resolvConf, o.dnsPort);
    const d = dns;
    controller = await Controller.open({
      store,
      stateDir: o.stateDir,
      resolvConf: o.resolvConf,
      config: { defaultSubnet: bip.text, defaultGateway: gateway, ...(o.fixedCidr ? { defaultIpRange: o.fixedCidr } : {}), defaultBridge: o.bridge },
      log: subsystemLogger('controller'),
      events: { networkUp: (n) => d.networkUp(n), networkDown: (n) => d.networkDown(n) },
      ...(dp ? { datapath: dp } : {}),
      onApply: (s, ok) => metrics?.observeApply(s, ok),
      ports: new PortHolder(subsystemLogger('ports')),
      ...(o.uplink ? { uplink: o.uplink } : {}),
      ...(o.publishAllow ? { publishAllow: parsePublishAllow(o.publishAllow, '--publish-allow') } : {}),
      ...(joined ? { overlay: joined.overlay } : {}),
    });
    if (joined) GlobalNetworks.attach(controller, { cluster: joined.cluster, overlay: joined.overlay, underlayMtu: joined.underlayMtu, log: controller.log });
    const m = (metrics = new Metrics(controller, subsystemLogger('metrics'), () => d.stats()));
    const rec = await controller.reconcile().catch((e: unknown) => {
      m.reconciled('start', 'failed');
      throw e;
    });
    m.reconciled('start', 'ok');
    // Another tool may flush the tables (a firewall reload): look, and repair.
    drift = setInterval(() => {
      controller.repairDatapath().then((r) => m.reconciled('drift', r ? 'repaired' : 'clean'), (e: unknown) => {
        m.reconciled('drift', 'failed');
        log.error({ err: e }, 'datapath repair failed');
      });
    }, o.driftCheckMs);
    drift.unref();
    const started = new Date().toISOString();
    server = await startApi(o.socket, controller, {
      info: async () => ({
        version: packageVersion,
        pid: process.pid,
        started,
        stateDir: o.stateDir,
        socket: o.socket,
        instance: controller.snapshot().instance,
        datapath,
        lastReconcile: rec,
        config: config ? configReport(config) : null,
        // Routes to other hosts' blocks of routed networks, judged (`berth doctor` warns).
        routed: await routedHops(controller.snapshot()).catch((e: unknown) => [{ warning: `routed networks' routes unreadable: ${(e as Error).message}` }]),
      }),
      metrics: async () => ({ contentType: m.contentType, text: await m.render() }),
    }, log);
    if (metricsAddr) {
      metricsServer = await startMetricsServer(metricsAddr, m);
      log.info({ addr: o.metricsAddr }, 'serving GET /metrics over TCP');
    }
    if (o.dockerPlugin) {
      plugin = await startDockerPlugin(o.dockerPlugin, controller, subsystemLogger('docker'));
      log.info({ socket: o.dockerPlugin }, 'serving the docker plugin protocol (NetworkDriver, IpamDriver)');
    }
    log.info({ socket: o.socket, stateDir: o.stateDir }, 'berthd ready');
  } catch (e) {
    if (drift) clearInterval(drift);
    await dns?.closeAll();
    server?.close();
    plugin?.close();
    metricsServer?.close();
    await joined?.cluster.leave().catch(() => undefined);
    await pins?.release();
    await lock.release();
    throw e;
  }
  const srv = server;
  const dd = dns;
  const pl = plugin;
  const ms = metricsServer;
  const owner = pins;
  return {
    async stop() {
      if (drift) clearInterval(drift);
      await new Promise<void>((resolve) => srv.close(() => resolve()));
      if (pl) await new Promise<void>((resolve) => pl.close(() => resolve()));
      if (ms) await new Promise<void>((resolve) => ms.close(() => resolve()));
      await dd.closeAll();
      await joined?.cluster.leave().catch(() => undefined);
      await store.flush().catch((e: unknown) => log.error({ err: e }, 'the state could not be written to disk'));
      await owner?.release();
      await lock.release();
      log.info('berthd stopped; sandboxes keep running');
    },
  };
}

function main(): void {
  // A failure nobody awaited must be seen in the log, and must not take the API down.
  process.on('unhandledRejection', (e) => subsystemLogger('berthd').error({ err: e }, 'unhandled rejection'));
  const program = daemonCommand(async (flags) => {
    const { config, printConfig, ...given } = flags;
    const cfg = await resolveConfig({ flags: given, ...(config !== undefined ? { configFile: config } : {}), env: process.env });
    if (printConfig) {
      process.stdout.write(formatConfig(configReport(cfg)));
      return;
    }
    const d = await runDaemon(cfg.options, cfg);
    let stopping = false;
    const stop = () => {
      if (stopping) return;
      stopping = true;
      void d.stop().then(() => process.exit(0));
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  program.parseAsync(process.argv).catch((e: unknown) => {
    process.stderr.write(`berthd: ${(e as Error).message}\n`);
    process.exit(1);
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) main();
