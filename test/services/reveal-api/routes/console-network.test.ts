import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect } from 'vitest';
import type { RevealApp } from '../../../../services/reveal-api/app.js';
import { networkTestsEnabled, startNetworkPeer, type NetworkPeer } from '../../../support/netns.js';
import { revealTest as it } from '../../../support/reveal-fixture.js';

const enabled = networkTestsEnabled('local sign-in through a non-loopback address (test/services/reveal-api/routes/console-network.test.ts)');

let peer: NetworkPeer;
let app: RevealApp;
let port: number;

describe.skipIf(!enabled)('local sign-in seen from another machine', () => {
  // Inside the skipped describe: without network namespaces no harness is started at all.
  it.beforeAll(async ({ harness }) => {
    peer = await startNetworkPeer();
    // Built as npm start builds it (local sign-in, loopback HOST), then made to listen on every interface anyway.
    app = await harness.buildApp({ CONSOLE_LOCAL_SIGN_IN: 'true' }, { localStack: true });
    await app.listen({ host: '0.0.0.0', port: 0 });
    port = (app.server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await peer?.close();
  });

  it('does not exist for a request that arrives on a non-loopback address, even when the app listens there', async () => {
    const url = `http://${peer.hostAddress}:${port}`;
    // The listener is reachable from the other machine…
    expect((await peer.request(`${url}/healthz`)).status).toBe(200);
    // …but it offers no local sign-in, and minting is refused.
    const settings = await peer.request(`${url}/console/settings.json`);
    expect(JSON.parse(settings.body)).toMatchObject({ local_sign_in: null });
    const signIn = await peer.request(`${url}/console/local-sign-in`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ role: 'investigator' }),
    });
    expect(signIn.status).toBe(404);
    expect(signIn.body).toContain('exists only on a loopback listener');
    expect(signIn.body).not.toMatch(/eyJ/);
    // On this machine, through loopback, it still works.
    const local = await fetch(`http://127.0.0.1:${port}/console/local-sign-in`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ role: 'investigator' }),
    });
    expect(local.status).toBe(200);
    expect(((await local.json()) as { access_token: string }).access_token).toMatch(/^eyJ/);
  });
});
