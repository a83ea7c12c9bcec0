/**
 * Typed errors shared by both services. `transient` decides what a caller does next:
 * a transient failure is retried later (nothing is acknowledged), a permanent one is
 * reported (quarantine, 4xx) and never retried.
 */
export class TokenvaultError extends Error {
  readonly transient: boolean;
  readonly code: string;

  constructor(code: string, message: string, options: { cause?: unknown; transient?: boolean } = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.transient = options.transient ?? false;
  }
}

/** A setting is missing or invalid: the process must stop at start. */
export class ConfigError extends TokenvaultError {
  readonly settings: string[];
  constructor(message: string, settings: string[]) {
    super('config_invalid', message);
    this.settings = settings;
  }
}

/** The key provider (KMS or local keyring) failed. */
export class KeyProviderError extends TokenvaultError {}

/** Authenticated decryption failed: wrong key, tampered ciphertext or a row moved to another token. */
export class DecryptionError extends TokenvaultError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('decryption_failed', message, { ...options, transient: false });
  }
}

/** The one error body shape clients of every tokenvault HTTP endpoint can rely on. */
export interface ErrorBody {
  error: { code: string; message: string };
}

export function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}

// One classification for every error (ours carry `transient`; PostgreSQL and socket errors by code).
export { describeError, errorSummary, isTransient, sqlState, type ErrorSummary } from '../db/errors.js';
