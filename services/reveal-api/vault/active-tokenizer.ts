import type pg from 'pg';
import type { Db } from '../../../db/client.js';
import type { Tokenizer } from '../../../lib/crypto/tokens.js';
import { TokenvaultError } from '../../../lib/errors.js';
import type { KeyProvider } from '../../../lib/keys/key-provider.js';
import { loadActiveTokenizer } from '../../../lib/keys/token-keys.js';

export class TokenKeyUnavailableError extends TokenvaultError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('token_key_unavailable', message, { ...options, transient: true });
  }
}

/**
 * The active token key for /tokenize. Polls the active version (a cheap indexed query) at most
 * every `refreshMs` and unwraps a new key only when it changed (rotation), so most requests
 * cost no database round trip and no key-provider call.
 */
export class ActiveTokenizer {
  private current: Tokenizer | undefined;
  private checkedAt = Number.NEGATIVE_INFINITY;
  private refreshing: Promise<Tokenizer> | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly db: Db,
    private readonly provider: KeyProvider,
    private readonly refreshMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  async get(): Promise<Tokenizer> {
    if (this.current !== undefined && this.now() - this.checkedAt < this.refreshMs) return this.current;
    this.refreshing ??= this.refresh().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /** Version in use, if loaded. */
  get version(): number | undefined {
    return this.current?.keyVersion;
  }

  private async refresh(): Promise<Tokenizer> {
    let version: number | undefined;
    try {
      const { rows } = await this.pool.query<{ version: number }>({
        name: 'active-token-key-version',
        text: "SELECT version FROM token_keys WHERE state = 'active' ORDER BY version DESC LIMIT 1",
      });
      version = rows[0]?.version;
    } catch (cause) {
      throw new TokenKeyUnavailableError('the active token key version cannot be read', { cause });
    }
    // The reveal API may not create token keys (no INSERT grant): the ingestor creates version 1.
    if (version === undefined) throw new TokenKeyUnavailableError('no active token key exists yet (start the ingestor first)');
    if (this.current?.keyVersion !== version) {
      try {
        this.current = await loadActiveTokenizer(this.db, this.provider);
      } catch (cause) {
        throw new TokenKeyUnavailableError('the active token key cannot be unwrapped', { cause });
      }
    }
    this.checkedAt = this.now();
    return this.current;
  }
}
