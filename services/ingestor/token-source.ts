import type { Db } from '../../db/client.js';
import type { Tokenizer } from '../../lib/crypto/tokens.js';
import type { KeyProvider } from '../../lib/keys/key-provider.js';
import { activeTokenKeyVersion, loadActiveTokenizer } from '../../lib/keys/token-keys.js';

/**
 * The token key new rows are tokenised with. Key rotation (keys:rotate-token-key) marks a
 * new version active; `refresh()` notices that with one small query and switches.
 */
export class ActiveTokenizer {
  private tokenizer: Tokenizer | undefined;

  constructor(
    private readonly db: Db,
    private readonly provider: KeyProvider,
  ) {}

  get loaded(): boolean {
    return this.tokenizer !== undefined;
  }

  current(): Tokenizer {
    if (this.tokenizer === undefined) throw new Error('token key not loaded: call load() first');
    return this.tokenizer;
  }

  async load(): Promise<Tokenizer> {
    this.tokenizer = await loadActiveTokenizer(this.db, this.provider);
    return this.tokenizer;
  }

  /** Returns the new version when the active key changed (and switches to it), undefined otherwise. */
  async refresh(): Promise<number | undefined> {
    const version = await activeTokenKeyVersion(this.db);
    if (version === undefined || version === this.tokenizer?.keyVersion) return undefined;
    const next = await loadActiveTokenizer(this.db, this.provider);
    this.tokenizer = next;
    return next.keyVersion;
  }
}
