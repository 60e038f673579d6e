import { describe, expect, it } from 'vitest';
import { parseEtcdUrl } from './etcd.js';

describe('parseEtcdUrl', () => {
  it('takes one or more HOST:PORT, etcds:// for TLS', () => {
    expect(parseEtcdUrl('etcd://10.1.2.3:2379')).toEqual({ url: 'etcd://10.1.2.3:2379', hosts: ['http://10.1.2.3:2379'], tls: false });
    expect(parseEtcdUrl('etcd://a.example:2379,b.example:2380').hosts).toEqual(['http://a.example:2379', 'http://b.example:2380']);
    expect(parseEtcdUrl('etcds://[fd00::1]:2379')).toEqual({ url: 'etcds://[fd00::1]:2379', hosts: ['https://[fd00::1]:2379'], tls: true });
  });

  it('names the bad value', () => {
    expect(() => parseEtcdUrl('http://x:1')).toThrow(/--store 'http:\/\/x:1' is not etcd:\/\/HOST:PORT/);
    expect(() => parseEtcdUrl('etcd://x')).toThrow(/'x' is not HOST:PORT/);
    expect(() => parseEtcdUrl('etcd://x:1,y:99999')).toThrow(/'y:99999' is not HOST:PORT/);
    expect(() => parseEtcdUrl('etcd://x:0')).toThrow(/'x:0'/);
  });
});
