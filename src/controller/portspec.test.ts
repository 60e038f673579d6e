import { describe, expect, it } from 'vitest';
import { parseExpose, parsePortSpec } from './portspec.js';

describe('publish specs (Docker syntax)', () => {
  it.each([
    ['80', { hostIp: '', hostPort: 0, hostEnd: 0, containerPort: 80, containerEnd: 80, proto: 'tcp' }],
    ['8080:80', { hostIp: '', hostPort: 8080, hostEnd: 8080, containerPort: 80, containerEnd: 80, proto: 'tcp' }],
    ['127.0.0.1:8080:80/udp', { hostIp: '127.0.0.1', hostPort: 8080, hostEnd: 8080, containerPort: 80, containerEnd: 80, proto: 'udp' }],
    ['127.0.0.1::80', { hostIp: '127.0.0.1', hostPort: 0, hostEnd: 0, containerPort: 80, containerEnd: 80, proto: 'tcp' }],
    ['[::1]:8080:80/sctp', { hostIp: '::1', hostPort: 8080, hostEnd: 8080, containerPort: 80, containerEnd: 80, proto: 'sctp' }],
    ['9000-9999:9000-9999', { hostIp: '', hostPort: 9000, hostEnd: 9999, containerPort: 9000, containerEnd: 9999, proto: 'tcp' }],
    ['8000-8010:80', { hostIp: '', hostPort: 8000, hostEnd: 8010, containerPort: 80, containerEnd: 80, proto: 'tcp' }],
  ])('%s', (spec, want) => {
    expect(parsePortSpec(spec)).toEqual(want);
  });

  it.each([
    ['80/icmp', /protocol 'icmp' is not tcp, udp or sctp/],
    ['70000', /container port '70000' is not a port from 1 to 65535/],
    ['0:80', /host port '0'/],
    ['9000-9010:80-81', /host range 9000-9010 and container range 80-81 differ in length/],
    ['99-90', /container port range '99-90' ends before it starts/],
    ['1.2.3:80:80', /invalid host address in '1\.2\.3:80:80' '1\.2\.3'/],
    ['a:b:c:d', /expected \[HOSTIP:\]\[HOSTPORT:\]CONTAINERPORT/],
    ['80:', /expected/],
    ['[::1:80:80', /unterminated/],
  ])('refuses %s, naming what is wrong', (spec, err) => {
    expect(() => parsePortSpec(spec)).toThrow(err);
    expect(() => parsePortSpec(spec)).toThrow(new RegExp(`'${spec.replace(/[[\].*+?^$()|]/g, '\\$&')}'`));
  });

  it('expose takes ports and ranges with a protocol', () => {
    expect(parseExpose('53/udp')).toEqual([{ port: 53, proto: 'udp' }]);
    expect(parseExpose('80-81')).toEqual([{ port: 80, proto: 'tcp' }, { port: 81, proto: 'tcp' }]);
  });
});
