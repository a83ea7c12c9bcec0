import { isIP } from 'node:net';

/**
 * True when `host` (a listen address or a Host header's name) can only mean this machine:
 * `localhost`, 127.0.0.0/8, ::1 and ::ffff:127.x. Anything else — 0.0.0.0, ::, a LAN address,
 * a DNS name — may be reached from the network.
 */
export function isLoopbackHost(host: string): boolean {
  const name = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  return isLoopbackAddress(name);
}

/** An IP address (as a socket reports it) on the loopback interface. */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  const ip = address.toLowerCase().replace(/^::ffff:/, '');
  if (isIP(ip) === 4) return ip.startsWith('127.');
  return isIP(ip) === 6 && (ip === '::1' || ip === '0:0:0:0:0:0:0:1');
}
