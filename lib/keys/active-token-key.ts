import type { Database } from '../../db/client.js';
import type { Tokenizer } from '../crypto/tokens.js';
import { TokenvaultError } from '../errors.js';
import type { KeyProvider } from './key-provider.js';
import { activeTokenKeyVersion, loadActiveTokenizer } from './token-keys.js';

/** The active token key cannot be read or unwrapped right now (transient: retry later). */
export class TokenKeyUnavailableError extends TokenvaultError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('token_key_unavailable', message, { ...options, transient: true });
  }
}

export interface ActiveTokenKeyOptions {
  /**
   * `get()` re-reads the active version at most this often (default 10 000 ms). Only the
   * version is read (one small indexed query); the key is unwrapped again only when it changed.
   */
  refreshMs?: number;
  now?: () => number;
}

/**
 * The token key new tokens are made with, for every process that tokenises. Key rotation
 * (keys:rotate-token-key) marks a new version active; both ways of noticing it live here:
 * - `load()` once, then `current()` on the hot path and `refresh()` on a timer (the ingestor,
 *   which also creates version 1 on a fresh database);
 * - `get()`, which refreshes on read at most every `refreshMs` (the reveal API, which may not
 *   create token keys: it fails with TokenKeyUnavailableError until the ingestor has).
 */
export class ActiveTokenKey {
  private tokenizer: Tokenizer | undefined;
  private checkedAt = Number.NEGATIVE_INFINITY;
  private refreshing: Promise<Tokenizer> | undefined;
  private readonly refreshMs: number;
  private readonly now: () => number;

  constructor(
    private readonly database: Database,
    private readonly provider: KeyProvider,
    options: ActiveTokenKeyOptions = {},
  ) {
    this.refreshMs = options.refreshMs ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  get loaded(): boolean {
    return this.tokenizer !== undefined;
  }

  /** Version in use, if loaded. */
  get version(): number | undefined {
    return this.tokenizer?.keyVersion;
  }

  current(): Tokenizer {
    if (this.tokenizer === undefined) throw new Error('token key not loaded: call load() first');
    return this.tokenizer;
  }

  /** Loads the active key, creating version 1 on a fresh database. */
  async load(): Promise<Tokenizer> {
    this.tokenizer = await loadActiveTokenizer(this.database.db, this.provider);
    this.checkedAt = this.now();
    return this.tokenizer;
  }

  /** Returns the new version when the active key changed (and switches to it), undefined otherwise. */
  async refresh(): Promise<number | undefined> {
    const version = await activeTokenKeyVersion(this.database.pool);
    if (version === undefined || version === this.tokenizer?.keyVersion) return undefined;
    await this.load();
    return this.tokenizer?.keyVersion;
  }

  /** The active key, re-checked at most every `refreshMs`; never creates one. */
  async get(): Promise<Tokenizer> {
    if (this.tokenizer !== undefined && this.now() - this.checkedAt < this.refreshMs) return this.tokenizer;
    this.refreshing ??= this.check().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async check(): Promise<Tokenizer> {
    let version: number | undefined;
    try {
      version = await activeTokenKeyVersion(this.database.pool);
    } catch (cause) {
      throw new TokenKeyUnavailableError('the active token key version cannot be read', { cause });
    }
    if (version === undefined) throw new TokenKeyUnavailableError('no active token key exists yet (start the ingestor first)');
    if (this.tokenizer?.keyVersion !== version) {
      try {
        this.tokenizer = await loadActiveTokenizer(this.database.db, this.provider);
      } catch (cause) {
        throw new TokenKeyUnavailableError('the active token key cannot be unwrapped', { cause });
      }
    }
    this.checkedAt = this.now();
    return this.tokenizer;
  }
}
