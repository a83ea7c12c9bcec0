import { computed, signal } from '@preact/signals';
import type { Me } from './sign-in.js';

export type Field = 'ip' | 'device_id';

export interface Permissions {
  reveal: Partial<Record<Field, 'plain' | 'masked'>>;
  tokenize: string[];
  erase: string[];
  audit: boolean;
}

export interface Session {
  /** The bearer token: kept in this variable only, never in storage, cookies or the URL. */
  accessToken: string;
  expiresAt: Date;
  sub: string;
  roles: string[];
  permissions: Permissions;
  /** The policy lets this user approve or deny others' reveal requests. */
  canApprove: boolean;
  /** GET /me: budgets and open requests. */
  me: Me;
  via: 'oidc' | 'local';
  idToken?: string;
}

/** GET /console/settings.json. */
export interface ConsoleSettings {
  oidc: { issuer: string; client_id: string; scope: string; resource: string | null } | null;
  local_sign_in: { roles: string[] } | null;
  reveal_clear_seconds: number;
}

export const settings = signal<ConsoleSettings | null>(null);
export const session = signal<Session | null>(null);
/** Why the last session ended, shown on the sign-in page. */
export const endedBecause = signal<string | null>(null);
export const now = signal(Date.now());

export const secondsLeft = computed(() => {
  const current = session.value;
  return current === null ? 0 : Math.max(0, Math.floor((current.expiresAt.getTime() - now.value) / 1000));
});

let clock: ReturnType<typeof setInterval> | undefined;

export function startSession(next: Session): void {
  endedBecause.value = null;
  session.value = next;
  clock ??= setInterval(() => {
    now.value = Date.now();
    const current = session.value;
    if (current !== null && current.expiresAt.getTime() <= now.value) expireSession('Your session expired; sign in again.');
  }, 1000);
}

/** Forgets the token and everything revealed with it (views clear their state on session change). */
export function expireSession(reason: string): void {
  session.value = null;
  endedBecause.value = reason;
}
