/**
 * `berth inspect` / `berth network inspect` formats and `berth version`
 * against a real berthd in a test-made host namespace.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BerthHost } from '../../harness/berthd.js';
import type { Topology } from '../../harness/topology.js';
import type { NetworkView, SandboxView } from '../../src/api/views.js';
import { testTopology } from '../helpers/kernel.js';

let topo: Topology;
let h: BerthHost | undefined;

beforeAll(async () => {
  topo = testTopology();
  h = await BerthHost.create(topo, 'host', [], { onCreated: (x) => (h = x) });
  await h.berth('network', 'create', '--subnet', '10.91.0.0/24', 'front');
  await h.berth('run', '-d', '--name', 'web', '--network', 'front', '--ip', '10.91.0.5', '-p', '8080:80', '--', 'sleep', 'infinity');
}, 60_000);

afterAll(async () => {
  await h?.destroy();
  await topo?.destroy();
});

describe('berth inspect', () => {
  it('without a format, and with --format json, gives the JSON array', async () => {
    const plain = JSON.parse((await h!.berth('inspect', 'web')).stdout) as SandboxView[];
    expect(plain[0]!.Name).toBe('web');
    expect(JSON.parse((await h!.berth('inspect', 'web', '--format', 'json')).stdout)).toEqual(plain);
  });

  it('-f TEMPLATE: fields, json, range over a map, index, text around actions', async () => {
    const f = '{{.Name}} is {{.State.Status}}; {{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}}{{end}}; ports {{json .NetworkSettings.Ports}}; {{(index .NetworkSettings.Networks "front").Gateway}}';
    expect((await h!.berth('inspect', '-f', f, 'web')).stdout).toBe('web is running; front=10.91.0.5; ports ["0.0.0.0:8080->80/tcp"]; 10.91.0.1\n');
    expect((await h!.berth('inspect', '--format', '{{range .NetworkSettings.Ports}}<{{.}}>{{end}}', 'web')).stdout).toBe('<0.0.0.0:8080->80/tcp>\n');
  });

  it('--format table and table TEMPLATE', async () => {
    const t = (await h!.berth('inspect', '--format', 'table', 'web')).stdout.split('\n');
    expect(t[0]).toMatch(/^NAME\s+SANDBOX ID\s+STATUS\s+NETWORKS\s+PORTS$/);
    expect(t[1]).toMatch(/^web\s+[0-9a-f]{12}\s+running\s+front=10\.91\.0\.5\s+0\.0\.0\.0:8080->80\/tcp$/);
    const c = (await h!.berth('inspect', '--format', 'table {{.Name}}\\t{{.State.Status}}', 'web')).stdout;
    expect(c).toMatch(/^NAME\s+STATUS\nweb\s+running\n$/);
  });

  it('a missing field is an error naming it, and prints nothing else', async () => {
    const r = await h!.berthTry('inspect', '-f', '{{.State.Stauts}}', 'web');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('berth: template: 1:3: executing at <.State.Stauts>: no field "Stauts" in .State (it has: Status, Pid, ExitCode)');
  });
});

describe('berth network inspect', () => {
  it('takes the same formats', async () => {
    const [n] = JSON.parse((await h!.berth('network', 'inspect', 'front', '--format', 'json')).stdout) as NetworkView[];
    expect(n!.IPAM.Config[0]!.Subnet).toBe('10.91.0.0/24');
    expect((await h!.berth('network', 'inspect', '-f', '{{.Name}} {{.Driver}} {{range .IPAM.Config}}{{.Subnet}} via {{.Gateway}}{{end}} {{len .Containers}}', 'front')).stdout).toBe('front bridge 10.91.0.0/24 via 10.91.0.1 1\n');
    expect((await h!.berth('network', 'inspect', '--format', 'table', 'front')).stdout).toMatch(/^NAME\s+NETWORK ID\s+DRIVER\s+SCOPE\s+SUBNET\s+GATEWAY\s+SANDBOXES\nfront\s+[0-9a-f]{12}\s+bridge\s+local\s+10\.91\.0\.0\/24\s+10\.91\.0\.1\s+1\n$/);
    const r = await h!.berthTry('network', 'inspect', '-f', '{{index .Options}}{{.Nope}}', 'front');
    expect(r.stderr).toMatch(/executing at <\.Nope>: no field "Nope" in \. \(it has: Name, Id,/);
  });
});

describe('berth version', () => {
  it('names the running berthd', async () => {
    const { stdout } = await h!.berth('version');
    expect(stdout).toMatch(new RegExp(`^berthd:\\s+0\\.1\\.0 \\(pid \\d+, (bpf|iptables) datapath, socket ${h!.socket}\\)$`, 'm'));
    const j = JSON.parse((await h!.berth('version', '--format', 'json')).stdout);
    expect(j.berthd).toMatchObject({ running: true, version: '0.1.0', socket: h!.socket });
    expect(j.berthd.pid).toBe(h!.proc!.pid);
  });
});
