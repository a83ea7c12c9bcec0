/**
 * Synthetic login events with realistic repetition: each message draws its ip and
 * device_id from fixed pools (default 20k IPs, 30k devices), so most values recur, as in
 * real login traffic. About 1% are malformed, like the reference data.
 */
export interface SyntheticOptions {
  messages: number;
  distinctIps: number;
  distinctDevices: number;
  malformedRate: number;
  seed: number;
}

const VERSIONS = ['2.3.0', '0.2.6', '2.2.1', '0.96', '0.4.6', '3.7', '0.60', '0.6.0', '6.4.8', '7.31'];
const LOCALES = ['RU', 'PH', 'ID', 'FR', 'PT', 'BR', 'KE', 'US', 'DE', null, null, null];

export function syntheticBodies(options: SyntheticOptions): string[] {
  let state = options.seed >>> 0;
  // xorshift32: deterministic and fast; the bench needs reproducible data, not secrecy.
  const random = (): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x1_0000_0000;
  };
  const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)] as T;
  const ips = Array.from({ length: options.distinctIps }, () =>
    [1 + Math.floor(random() * 223), Math.floor(random() * 256), Math.floor(random() * 256), Math.floor(random() * 256)].join('.'),
  );
  const devices = Array.from(
    { length: options.distinctDevices },
    () =>
      `${String(Math.floor(random() * 1000)).padStart(3, '0')}-${String(Math.floor(random() * 100)).padStart(2, '0')}-${String(Math.floor(random() * 10_000)).padStart(4, '0')}`,
  );
  const hex = (n: number) => Array.from({ length: n }, () => Math.floor(random() * 16).toString(16)).join('');
  const bodies: string[] = [];
  for (let i = 0; i < options.messages; i += 1) {
    if (random() < options.malformedRate) {
      bodies.push(JSON.stringify({ foo: 'oops_wrong_msg_type', bar: String(i) }));
      continue;
    }
    bodies.push(
      JSON.stringify({
        user_id: `${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(12)}`,
        app_version: pick(VERSIONS),
        device_type: random() < 0.5 ? 'ios' : 'android',
        ip: pick(ips),
        locale: pick(LOCALES),
        device_id: pick(devices),
      }),
    );
  }
  return bodies;
}
