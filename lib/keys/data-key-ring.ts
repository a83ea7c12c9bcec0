import { eq } from 'drizzle-orm';
import type { DataKeyPolicy } from '../config/shared.js';
import type { Db } from '../../db/client.js';
import { dataKeys } from '../../db/schema.js';
import { open, seal } from '../crypto/aead.js';
import { KeyProviderError } from '../errors.js';
import type { KeyProvider } from './key-provider.js';

const PURPOSE = 'vault-data-key' as const;

export interface ActiveDataKey {
  id: number;
  key: Buffer;
}

export interface DataKeyRingStats {
  generated: number;
  unwrapped: number;
}

/**
 * Envelope encryption with cached data keys. Encryption uses one data key until it has
 * sealed `maxUses` values or is `maxAgeMs` old, then generates the next through the key
 * provider (one KMS call per rotation, not per message). Decryption unwraps each data key
 * once and keeps it in memory.
 */
export class DataKeyRing {
  private active: (ActiveDataKey & { uses: number; createdAt: number }) | undefined;
  private rotating: Promise<void> | undefined;
  private readonly unwrapped = new Map<number, Promise<Buffer>>();
  readonly stats: DataKeyRingStats = { generated: 0, unwrapped: 0 };

  constructor(
    private readonly db: Db,
    private readonly provider: KeyProvider,
    private readonly policy: DataKeyPolicy,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Reserves a key for `count` encryptions. Callers encrypt synchronously with it, so a
   * batch of values costs one await, not one per value.
   */
  async acquire(count = 1): Promise<ActiveDataKey> {
    for (;;) {
      const active = this.active;
      if (active !== undefined && active.uses + count <= this.policy.maxUses && this.now() - active.createdAt < this.policy.maxAgeMs) {
        active.uses += count;
        return { id: active.id, key: active.key };
      }
      this.rotating ??= this.rotate().finally(() => {
        this.rotating = undefined;
      });
      await this.rotating;
    }
  }

  async encrypt(plaintext: Buffer, aad: Buffer): Promise<{ dataKeyId: number; ciphertext: Buffer }> {
    const { id, key } = await this.acquire(1);
    return { dataKeyId: id, ciphertext: seal(key, plaintext, aad) };
  }

  async decrypt(dataKeyId: number, ciphertext: Buffer, aad: Buffer): Promise<Buffer> {
    return open(await this.keyById(dataKeyId), ciphertext, aad);
  }

  /** Unwraps (once) and returns the data key with this id. */
  keyById(id: number): Promise<Buffer> {
    let pending = this.unwrapped.get(id);
    if (pending === undefined) {
      pending = this.unwrap(id);
      this.unwrapped.set(id, pending);
      // A failed unwrap (KMS down) must not be cached: the next request tries again.
      pending.catch(() => this.unwrapped.delete(id));
    }
    return pending;
  }

  /** Forgets every plaintext key (shutdown). */
  clear(): void {
    this.active?.key.fill(0);
    this.active = undefined;
    this.unwrapped.clear();
  }

  private async rotate(): Promise<void> {
    const generated = await this.provider.generateDataKey(PURPOSE);
    const [row] = await this.db
      .insert(dataKeys)
      .values({ purpose: PURPOSE, wrappedKey: generated.wrapped, kekId: generated.kekId })
      .returning({ id: dataKeys.id });
    if (row === undefined) throw new KeyProviderError('data_key_not_stored', 'inserting a data key returned no id');
    this.stats.generated += 1;
    this.active = { id: row.id, key: generated.plaintext, uses: 0, createdAt: this.now() };
    this.unwrapped.set(row.id, Promise.resolve(generated.plaintext));
  }

  private async unwrap(id: number): Promise<Buffer> {
    const [row] = await this.db.select().from(dataKeys).where(eq(dataKeys.id, id));
    if (row === undefined) throw new KeyProviderError('data_key_missing', `data key ${id} does not exist`);
    const key = await this.provider.decryptDataKey({ wrapped: row.wrappedKey, kekId: row.kekId }, PURPOSE);
    this.stats.unwrapped += 1;
    return key;
  }
}
