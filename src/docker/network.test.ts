import { describe, expect, it } from 'vitest';
import { berthNetworkName, endpointAliases, exposedPorts, networkName, portMap } from './network.js';

describe('docker option mapping', () => {
  it('names a Docker network after the first 12 of its id', () => {
    expect(networkName('0123456789abcdef'.repeat(4))).toBe('docker-0123456789ab');
  });

  it('maps com.docker.network.portmap (types.PortBinding) to port specs', () => {
    expect(portMap([
      { Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 8080, HostPortEnd: 8080 },
      { Proto: 17, IP: '', Port: 53, HostIP: '127.0.0.1', HostPort: 0, HostPortEnd: 0 },
      { Proto: 6, IP: '', Port: 81, HostIP: '0.0.0.0', HostPort: 9000, HostPortEnd: 9010 },
    ])).toEqual([
      { hostIp: '', hostPort: 8080, hostEnd: 8080, containerPort: 80, containerEnd: 80, proto: 'tcp' },
      { hostIp: '127.0.0.1', hostPort: 0, hostEnd: 0, containerPort: 53, containerEnd: 53, proto: 'udp' },
      { hostIp: '', hostPort: 9000, hostEnd: 9010, containerPort: 81, containerEnd: 81, proto: 'tcp' },
    ]);
    expect(portMap(undefined)).toEqual([]);
    expect(() => portMap([{ Proto: 1, Port: 80 }])).toThrow(/unknown port protocol 1/);
    expect(() => portMap([{ Proto: 6, Port: 0 }])).toThrow(/invalid container port 0/);
    expect(() => portMap({})).toThrow(/must be a list/);
  });

  it('maps com.docker.network.endpoint.exposedports (types.TransportPort)', () => {
    expect(exposedPorts([{ Proto: 6, Port: 81 }, { Proto: 132, Port: 9 }])).toEqual([{ port: 81, proto: 'tcp' }, { port: 9, proto: 'sctp' }]);
    expect(exposedPorts(null)).toEqual([]);
  });

  it('takes berth.network (a berth network name) and berth.aliases (comma-separated names), refusing bad values by name', () => {
    expect(berthNetworkName('shared')).toBe('shared');
    expect(() => berthNetworkName('-x')).toThrow(/option berth\.network=-x is not a valid berth network name/);
    expect(() => berthNetworkName(7)).toThrow(/berth\.network=7/);
    expect(endpointAliases({ 'berth.aliases': 'd1, web ,' })).toEqual(['d1', 'web']);
    expect(endpointAliases({ 'com.docker.network.portmap': [] })).toEqual([]);
    expect(endpointAliases(undefined)).toEqual([]);
    expect(() => endpointAliases({ 'berth.aliases': ['d1'] })).toThrow(/driver option berth\.aliases=\["d1"\] is not a comma-separated list/);
  });
});
