import { api } from './api.js';
import { completeSignIn, endSessionUrl, isCallback } from './oidc.js';
import { endedBecause, session, settings, startSession } from './session.js';
import type { ConsoleSettings, Me, Permissions } from './types.js';

function permissionsOf(me: Me): Permissions {
  const reveal: Permissions['reveal'] = {};
  const erase: string[] = [];
  const tokenize: string[] = [];
  for (const [field, grant] of Object.entries(me.fields)) {
    if ((field === 'ip' || field === 'device_id') && grant.reveal !== null) reveal[field] = grant.reveal;
    if (grant.erase) erase.push(field);
    if (grant.tokenize) tokenize.push(field);
  }
  return { reveal, erase, tokenize, audit: me.audit };
}

/** Loads the console settings and finishes an OpenID sign-in if the provider just redirected back. */
export async function boot(): Promise<void> {
  const response = await fetch('/console/settings.json', { cache: 'no-store' });
  if (!response.ok) throw new Error(`the console settings could not be loaded (${response.status})`);
  const loaded = (await response.json()) as ConsoleSettings;
  settings.value = loaded;
  if (isCallback() && loaded.oidc !== null) {
    try {
      const signedIn = await completeSignIn(loaded.oidc);
      await establish(signedIn.accessToken, signedIn.expiresAt, 'oidc', signedIn.idToken);
    } catch (error) {
      endedBecause.value = `Sign-in failed: ${error instanceof Error ? error.message : String(error)}`;
    }
  }
}

/** Asks the API (GET /me) who the token belongs to and what the policy lets it do. */
export async function establish(accessToken: string, expiresAt: Date, via: 'oidc' | 'local', idToken?: string): Promise<void> {
  const response = await fetch('/me', { headers: { authorization: `Bearer ${accessToken}` }, cache: 'no-store' });
  if (!response.ok) {
    const body = (await response.json().catch(() => ({}))) as { error?: { message?: string } };
    throw new Error(body.error?.message ?? `the server refused the token (${response.status})`);
  }
  const me = (await response.json()) as Me;
  startSession({
    accessToken,
    expiresAt,
    sub: me.subject,
    roles: me.roles,
    permissions: permissionsOf(me),
    canApprove: me.approve,
    me,
    via,
    ...(idToken === undefined ? {} : { idToken }),
  });
}

/** Budgets and open requests change with every reveal. */
export async function refreshMe(): Promise<void> {
  if (session.value === null) return;
  try {
    const { body } = await api<Me>('GET', '/me');
    if (session.value !== null) session.value = { ...session.value, me: body, permissions: permissionsOf(body), canApprove: body.approve };
  } catch {
    // Keep what we have; the next action reports the problem.
  }
}

export async function localSignIn(role: string, name: string): Promise<void> {
  const { body } = await api<{ access_token: string; expires_at: string }>('POST', '/console/local-sign-in', { role, ...(name.trim() === '' ? {} : { name: name.trim() }) });
  await establish(body.access_token, new Date(body.expires_at), 'local');
}

export async function signOut(): Promise<void> {
  const current = session.value;
  session.value = null;
  endedBecause.value = 'You signed out.';
  const oidc = settings.value?.oidc;
  if (current?.via === 'oidc' && oidc != null) {
    const url = await endSessionUrl(oidc, current.idToken).catch(() => undefined);
    if (url !== undefined) window.location.assign(url);
  }
}
