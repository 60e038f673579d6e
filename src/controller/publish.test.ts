import { describe, expect, it } from 'vitest';
import type { SandboxRecord, State } from '../store/model.js';
import { allocatePublishes } from './publish.js';
import { parsePortSpec } from './portspec.js';

function stateWith(publish: SandboxRecord['publish']): State {
  const other = { id: 'o1', name: 'other', publish } as SandboxRecord;
  return { version: 1, instance: 'abc123', networks: {}, sandboxes: { o1: other } };
}

const alloc = (s: State, ...specs: string[]) => allocatePublishes(s, 'new', specs.map(parsePortSpec), false, []);

describe('the host-port allocator', () => {
  it('refuses a port another sandbox publishes on the same or every address, naming it, and allows another address or protocol', () => {
    const s = stateWith([{ hostIp: '10.0.0.1', hostPort: 8080, count: 1, containerPort: 80, proto: 'tcp' }]);
    expect(() => alloc(s, '8080:80')).toThrow(/host port 8080\/tcp is already published by 'other'/);
    expect(() => alloc(s, '10.0.0.1:8080:80')).toThrow(/already published by 'other'/);
    expect(alloc(s, '10.0.0.2:8080:80')[0]).toMatchObject({ hostIp: '10.0.0.2', hostPort: 8080 });
    expect(alloc(s, '8080:80/udp')[0]).toMatchObject({ hostPort: 8080, proto: 'udp' });
  });

  it('finds a clash anywhere inside a range, and between publishes of one request', () => {
    const s = stateWith([{ hostIp: '', hostPort: 9000, count: 100, containerPort: 9000, proto: 'tcp' }]);
    expect(() => alloc(s, '9099:80')).toThrow(/host port 9099\/tcp is already published by 'other'/);
    expect(alloc(s, '9100:80')[0]).toMatchObject({ hostPort: 9100 });
    expect(() => alloc(stateWith([]), '7000-7009:7000-7009', '7005:80')).toThrow(/host port 7005\/tcp is already published/);
  });

  it('takes the next free ephemeral ports past those in use, and thousands of single ports one by one', () => {
    const s = stateWith([{ hostIp: '', hostPort: 32768, count: 2, containerPort: 80, proto: 'tcp' }]);
    const got = alloc(s, '80', '81');
    expect(got.map((p) => p.hostPort)).toEqual([32770, 32771]);
    expect(s.nextEphemeral).toBe(32772);
    const many = alloc(stateWith([]), ...Array.from({ length: 5000 }, (_, i) => `${20000 + i}:80`));
    expect(many).toHaveLength(5000);
    expect(new Set(many.map((p) => p.hostPort)).size).toBe(5000);
  });
});
