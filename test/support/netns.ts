import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Another machine on a network, for tests that must reach a listener through a non-loopback
 * address: a Linux network namespace joined to this one by a veth pair, `hostAddress` on our
 * side and `peerAddress` on its side (a /30 of 10.x). Needs root and iproute2 (`ip netns`),
 * which .ci/run installs.
 */
export interface NetworkPeer {
  /** This machine's address on the link: what the peer connects to. */
  hostAddress: string;
  /** The peer's own address: what our listener sees as the remote address. */
  peerAddress: string;
  /** An HTTP request made from inside the namespace, by the same Node.js binary. */
  request(url: string, init?: { method?: string; headers?: Record<string, string>; body?: string }): Promise<{ status: number; body: string }>;
  close(): Promise<void>;
}

/** Why network namespaces cannot be used here, or undefined when they can. */
export function networkNamespacesUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces exist on Linux only';
  if (process.getuid?.() !== 0) return 'creating a network namespace needs root';
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
  } catch {
    return 'iproute2 (`ip`) is missing: apt-get install iproute2, as .ci/run does';
  }
  return undefined;
}

/**
 * Tests that need another address run wherever namespaces work; elsewhere they are skipped
 * with a message saying what is missing. On CI (CI=true) a missing prerequisite fails instead.
 */
export function networkTestsEnabled(suite: string): boolean {
  const missing = networkNamespacesUnavailable();
  if (missing === undefined) return true;
  if (process.env.CI === 'true') throw new Error(`${suite} cannot run on CI: ${missing}`);
  console.warn(`\n  SKIPPED "${suite}": ${missing}. Run the tests as root with iproute2 installed (as .ci/run does) to run it.\n`);
  return false;
}

export async function startNetworkPeer(): Promise<NetworkPeer> {
  const id = randomBytes(3).toString('hex');
  const namespace = `tvtest-${id}`;
  const hostSide = `tvh${id}`;
  const peerSide = `tvp${id}`;
  // A /30 in 10.200.0.0/13, different per run so parallel runs do not collide.
  const block = randomBytes(2).readUInt16BE(0) % 2048;
  const base = [10, 200 + Math.floor(block / 256), block % 256];
  const hostAddress = `${base.join('.')}.1`;
  const peerAddress = `${base.join('.')}.2`;
  const ip = (...args: string[]) => run('ip', args);
  await ip('netns', 'add', namespace);
  try {
    await ip('link', 'add', hostSide, 'type', 'veth', 'peer', 'name', peerSide);
    await ip('link', 'set', peerSide, 'netns', namespace);
    await ip('addr', 'add', `${hostAddress}/30`, 'dev', hostSide);
    await ip('link', 'set', hostSide, 'up');
    await ip('netns', 'exec', namespace, 'ip', 'addr', 'add', `${peerAddress}/30`, 'dev', peerSide);
    await ip('netns', 'exec', namespace, 'ip', 'link', 'set', peerSide, 'up');
    await ip('netns', 'exec', namespace, 'ip', 'link', 'set', 'lo', 'up');
  } catch (error) {
    await ip('netns', 'del', namespace).catch(() => undefined);
    await ip('link', 'del', hostSide).catch(() => undefined);
    throw error;
  }
  return {
    hostAddress,
    peerAddress,
    async request(url, init = {}) {
      const script = `
        const [url, init] = JSON.parse(process.argv[1]);
        fetch(url, { ...init, signal: AbortSignal.timeout(10000) })
          .then(async (response) => console.log(JSON.stringify({ status: response.status, body: await response.text() })))
          .catch((error) => { console.log(JSON.stringify({ status: 0, body: String(error.cause?.code ?? error.message) })); });`;
      const { stdout } = await run('ip', ['netns', 'exec', namespace, process.execPath, '-e', script, JSON.stringify([url, init])], { timeout: 30_000 });
      return JSON.parse(stdout.trim()) as { status: number; body: string };
    },
    async close() {
      // Deleting the namespace destroys its end of the pair, and with it ours.
      await ip('netns', 'del', namespace).catch(() => undefined);
      await ip('link', 'del', hostSide).catch(() => undefined);
    },
  };
}
