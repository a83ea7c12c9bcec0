import { api, ApiError } from './api.js';
import { completeSignIn, endSessionUrl, isCallback } from './oidc.js';
import { endedBecause, session, settings, startSession, type ConsoleSettings, type Permissions } from './session.js';

interface SessionView {
  sub: string;
  roles: string[];
  permissions: Permissions;
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

/** Asks the API who the token belongs to and what the policy lets it do. */
export async function establish(accessToken: string, expiresAt: Date, via: 'oidc' | 'local', idToken?: string): Promise<void> {
  const headers = { authorization: `Bearer ${accessToken}` };
  const response = await fetch('/console/session', { headers, cache: 'no-store' });
  if (!response.ok) {
    const body = (await response.json().catch(() => ({}))) as { error?: { message?: string } };
    throw new Error(body.error?.message ?? `the server refused the token (${response.status})`);
  }
  const view = (await response.json()) as SessionView;
  startSession({ accessToken, expiresAt, sub: view.sub, roles: view.roles, permissions: view.permissions, canApprove: false, me: null, via, ...(idToken === undefined ? {} : { idToken }) });
  // Optional APIs: present on servers with reveal budgets and approvals.
  const [me, approvals] = await Promise.allSettled([api<Record<string, unknown>>('GET', '/me'), api<unknown>('GET', '/approvals')]);
  const current = session.value;
  if (current === null) return;
  session.value = {
    ...current,
    me: me.status === 'fulfilled' ? me.value.body : null,
    canApprove: approvals.status === 'fulfilled' || (approvals.reason instanceof ApiError && approvals.reason.status === 429),
  };
}

export async function refreshMe(): Promise<void> {
  const current = session.value;
  if (current === null) return;
  try {
    const me = await api<Record<string, unknown>>('GET', '/me');
    if (session.value !== null) session.value = { ...session.value, me: me.body };
  } catch {
    // Not offered by this server: nothing to show.
  }
}

export async function localSignIn(role: string, name: string): Promise<void> {
  const { body } = await api<{ accessToken: string; expiresAt: string }>('POST', '/console/local-sign-in', { role, ...(name.trim() === '' ? {} : { name: name.trim() }) });
  await establish(body.accessToken, new Date(body.expiresAt), 'local');
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
