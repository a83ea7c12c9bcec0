import type { AuditSigner, AuditSignerConfig } from './audit-signer.js';
import { KmsAuditSigner } from './kms-audit-signer.js';
import { LocalAuditSigner } from './local-audit-signer.js';

export async function createAuditSigner(config: AuditSignerConfig): Promise<AuditSigner> {
  if (config.kind === 'aws-kms') return KmsAuditSigner.open(config);
  return LocalAuditSigner.open(config.file);
}
