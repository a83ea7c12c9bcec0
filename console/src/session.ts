import { computed, signal } from '@preact/signals';
import type { ConsoleSettings, Session } from './types.js';

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
