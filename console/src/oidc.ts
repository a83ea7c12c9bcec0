import * as oauth from 'oauth4webapi';
import type { ConsoleSettings } from './types.js';

type OidcSettings = NonNullable<ConsoleSettings['oidc']>;

/** What must survive the round trip to the identity provider (not a token: useless without the code). */
interface PendingSignIn {
  codeVerifier: string;
  state: string;
  nonce: string;
}

const PENDING_KEY = 'tokenvault.console.pending-sign-in';

export interface SignedIn {
  accessToken: string;
  expiresAt: Date;
  idToken: string | undefined;
}

export function redirectUri(): string {
  return `${window.location.origin}/console/`;
}

/** Plain http is only accepted for an identity provider on this machine (development, tests). */
function requestOptions(issuer: URL): { [oauth.allowInsecureRequests]?: boolean } {
  const loopback = issuer.hostname === '127.0.0.1' || issuer.hostname === 'localhost' || issuer.hostname === '[::1]';
  return issuer.protocol === 'http:' && loopback ? { [oauth.allowInsecureRequests]: true } : {};
}

async function discover(settings: OidcSettings): Promise<oauth.AuthorizationServer> {
  const issuer = new URL(settings.issuer);
  const response = await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...requestOptions(issuer) });
  return oauth.processDiscoveryResponse(issuer, response);
}

/** Authorization code flow with PKCE (S256), state and nonce: leaves the page for the provider. */
export async function beginSignIn(settings: OidcSettings): Promise<void> {
  const as = await discover(settings);
  if (as.authorization_endpoint === undefined) throw new Error('the identity provider has no authorization endpoint');
  const pending: PendingSignIn = { codeVerifier: oauth.generateRandomCodeVerifier(), state: oauth.generateRandomState(), nonce: oauth.generateRandomNonce() };
  const url = new URL(as.authorization_endpoint);
  url.searchParams.set('client_id', settings.client_id);
  url.searchParams.set('redirect_uri', redirectUri());
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('scope', settings.scope);
  url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(pending.codeVerifier));
  url.searchParams.set('code_challenge_method', 'S256');
  url.searchParams.set('state', pending.state);
  url.searchParams.set('nonce', pending.nonce);
  if (settings.resource !== null) url.searchParams.set('resource', settings.resource);
  sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
  window.location.assign(url.href);
}

/** True when this page load is the provider redirecting back with a code or an error. */
export function isCallback(): boolean {
  const params = new URLSearchParams(window.location.search);
  return sessionStorage.getItem(PENDING_KEY) !== null && (params.has('code') || params.has('error'));
}

/** Exchanges the code (with the PKCE verifier) for tokens and validates the ID token. */
export async function completeSignIn(settings: OidcSettings): Promise<SignedIn> {
  const stored = sessionStorage.getItem(PENDING_KEY);
  sessionStorage.removeItem(PENDING_KEY);
  const current = new URL(window.location.href);
  // The code must not stay in the address bar or history.
  window.history.replaceState(null, '', '/console/');
  if (stored === null) throw new Error('no sign-in was started from this tab');
  const pending = JSON.parse(stored) as PendingSignIn;
  const as = await discover(settings);
  const client: oauth.Client = { client_id: settings.client_id };
  const issuer = new URL(settings.issuer);
  const params = oauth.validateAuthResponse(as, client, current, pending.state);
  const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectUri(), pending.codeVerifier, {
    ...requestOptions(issuer),
    ...(settings.resource === null ? {} : { additionalParameters: { resource: settings.resource } }),
  });
  const result = await oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: pending.nonce, requireIdToken: true });
  const expiresIn = result.expires_in ?? 300;
  return { accessToken: result.access_token, expiresAt: new Date(Date.now() + expiresIn * 1000), idToken: result.id_token };
}

/** RP-initiated logout at the provider, when it offers it; the local copy is already gone. */
export async function endSessionUrl(settings: OidcSettings, idToken: string | undefined): Promise<string | undefined> {
  const as = await discover(settings);
  if (as.end_session_endpoint === undefined) return undefined;
  const url = new URL(as.end_session_endpoint);
  url.searchParams.set('client_id', settings.client_id);
  url.searchParams.set('post_logout_redirect_uri', redirectUri());
  if (idToken !== undefined) url.searchParams.set('id_token_hint', idToken);
  return url.href;
}
