import { writeFile } from 'node:fs/promises';
import type { NoteSigner } from '../../../../lib/audit/note/signer.js';
import type { AuditSigner } from '../../../../lib/keys/audit-signer.js';
import { loadOrCreateEd25519Key } from '../../../../lib/keys/ed25519-key-file.js';
import { KmsEd25519NoteSigner } from '../../../../lib/keys/kms-ed25519-note-signer.js';
import { ecdsaNoteSigner, ed25519NoteSigner } from '../../../../lib/keys/note-signers.js';
import type { AuditCheckpointConfig } from '../../config.js';

export interface LogNoteSigners {
  /** ECDSA P-256 (the audit signing key: KMS or the local file) first, then Ed25519 when configured. */
  signers: NoteSigner[];
  close(): void;
}

/**
 * The keys that sign each checkpoint note, named by the log's origin: the audit signing key as
 * type 0x02, and an Ed25519 key (AUDIT_ED25519_KEY_FILE, or AUDIT_ED25519_KEY_ID in KMS) as
 * type 0x01, the signature C2SP witnesses and tools expect. The local key's vkey is written beside
 * it (<file>.vkey) for witnesses and auditors.
 */
export async function createNoteSigners(config: AuditCheckpointConfig, auditSigner: AuditSigner): Promise<LogNoteSigners> {
  const signers: NoteSigner[] = [ecdsaNoteSigner(config.origin, auditSigner)];
  let close = () => undefined as void;
  if (config.ed25519?.kind === 'local') {
    const signer = ed25519NoteSigner(config.origin, await loadOrCreateEd25519Key(config.ed25519.file, 'AUDIT_ED25519_KEY_FILE'));
    signers.push(signer);
    // The public half, for witnesses (WITNESS_LOG_KEYS) and auditors (audit:verify --log-key).
    await writeFile(`${config.ed25519.file}.vkey`, `${signer.verifierKey}\n`, { mode: 0o644 });
  } else if (config.ed25519?.kind === 'aws-kms') {
    const kms = await KmsEd25519NoteSigner.open(config.ed25519, config.origin, 'AUDIT_ED25519_KEY_ID');
    signers.push(kms);
    close = () => kms.close();
  }
  return { signers, close };
}
