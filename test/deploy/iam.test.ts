import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

const IAM = fileURLToPath(new URL('../../deploy/iam/', import.meta.url));

interface Statement {
  Sid: string;
  Effect: string;
  Action: string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}
interface Policy {
  Version: string;
  Statement: Statement[];
}

const policy = (name: string): Policy => JSON.parse(readFileSync(`${IAM}${name}`, 'utf8')) as Policy;
const actions = (p: Policy): string[] => p.Statement.flatMap((s) => s.Action);
const resources = (s: Statement): string[] => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]);

// The deployment's configured queue and key, so the policies grant exactly what is used.
const configMaps = parseAllDocuments(readFileSync(fileURLToPath(new URL('../../deploy/k8s/configmaps.yaml', import.meta.url)), 'utf8')).map(
  (doc) => doc.toJS() as { metadata: { name: string }; data: Record<string, string> },
);
const setting = (map: string, name: string): string => configMaps.find((m) => m.metadata.name === map)?.data[name] ?? '';
const KEY_ARN = setting('tokenvault-common', 'KMS_KEY_ID');
const queueUrl = new URL(setting('tokenvault-ingestor', 'SQS_QUEUE_URL'));
const [, account, queueName] = queueUrl.pathname.split('/');
const QUEUE_ARN = `arn:aws:sqs:${setting('tokenvault-common', 'AWS_REGION')}:${account}:${queueName}`;
const AUDIT_KEY_ARN = setting('tokenvault-reveal-api', 'AUDIT_SIGNING_KEY_ID');
const AUDIT_ED25519_KEY_ARN = setting('tokenvault-reveal-api', 'AUDIT_ED25519_KEY_ID');
const CHECKPOINT_BUCKET_ARN = `arn:aws:s3:::${setting('tokenvault-reveal-api', 'AUDIT_CHECKPOINT_S3_BUCKET')}`;
const CHECKPOINT_OBJECTS_ARN = `${CHECKPOINT_BUCKET_ARN}/audit-checkpoints/*`;
const PURPOSES = ['vault-data-key', 'token-key'];
const KMS_CRYPTO = ['kms:GenerateDataKey', 'kms:Decrypt', 'kms:ReEncryptFrom', 'kms:ReEncryptTo', 'kms:Encrypt'];

describe('deploy/iam policies', () => {
  const files = readdirSync(IAM).filter((file) => file.endsWith('.json'));

  it('parse as IAM policy documents with no wildcard action or resource', () => {
    expect(files.sort()).toEqual(['ingestor-policy.json', 'keda-operator-policy.json', 'key-admin-policy.json', 'reveal-api-policy.json']);
    for (const file of files) {
      const p = policy(file);
      expect(p.Version, file).toBe('2012-10-17');
      for (const statement of p.Statement) {
        expect(statement.Effect, file).toBe('Allow');
        expect(statement.Sid, file).toMatch(/^[A-Za-z0-9]+$/);
        for (const action of statement.Action) expect(action, file).toMatch(/^(sqs|kms|s3):[A-Za-z]+$/);
        for (const resource of resources(statement)) {
          // The only wildcard: objects under the checkpoint prefix of one bucket.
          if (resource !== CHECKPOINT_OBJECTS_ARN) expect(resource, file).not.toContain('*');
          expect(resource, file).toMatch(/^arn:aws:(sqs|kms|s3):/);
        }
      }
    }
  });

  it('binds every KMS cryptographic permission to the tokenvault encryption context', () => {
    for (const file of files) {
      for (const statement of policy(file).Statement.filter((s) => s.Action.some((a) => KMS_CRYPTO.includes(a)))) {
        expect(statement.Condition?.StringEquals?.['kms:EncryptionContext:tokenvault:purpose'], `${file} ${statement.Sid}`).toEqual(PURPOSES);
        expect(statement.Condition?.['ForAllValues:StringEquals']?.['kms:EncryptionContextKeys'], `${file} ${statement.Sid}`).toEqual(['tokenvault:purpose']);
      }
      // DescribeKey carries no encryption context, so it must stand alone (a context condition would deny it).
      for (const statement of policy(file).Statement.filter((s) => s.Action.includes('kms:DescribeKey'))) {
        expect(statement.Action, `${file} ${statement.Sid}`).toEqual(['kms:DescribeKey']);
      }
    }
  });

  it('lets the ingestor consume the login queue and generate/unwrap keys, nothing more', () => {
    const p = policy('ingestor-policy.json');
    expect(actions(p).sort()).toEqual(
      ['sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:ReceiveMessage', 'kms:GenerateDataKey', 'kms:Decrypt', 'kms:DescribeKey'].sort(),
    );
    for (const statement of p.Statement) {
      expect(resources(statement)).toEqual(statement.Action[0]?.startsWith('sqs:') ? [QUEUE_ARN] : [KEY_ARN]);
    }
  });

  it('lets the reveal-api only unwrap keys, sign audit checkpoints, publish them and read them back: no SQS, no key generation', () => {
    const p = policy('reveal-api-policy.json');
    expect(actions(p).sort()).toEqual(['kms:Decrypt', 'kms:DescribeKey', 'kms:GetPublicKey', 'kms:Sign', 'kms:Sign', 's3:GetObject', 's3:ListBucket', 's3:PutObject']);
    const expected: Record<string, string[]> = {
      UnwrapTokenvaultKeys: [KEY_ARN],
      ReadinessKeyCheck: [KEY_ARN],
      SignAuditCheckpoints: [AUDIT_KEY_ARN],
      SignAuditCheckpointsEd25519: [AUDIT_ED25519_KEY_ARN],
      ReadAuditSigningPublicKey: [AUDIT_KEY_ARN, AUDIT_ED25519_KEY_ARN],
      PublishAuditCheckpoints: [CHECKPOINT_OBJECTS_ARN],
      // The checkpointer reads back the newest object (its anchor) and compares an existing one before never overwriting it.
      ReadBackAuditCheckpoints: [CHECKPOINT_OBJECTS_ARN],
      ListAuditCheckpoints: [CHECKPOINT_BUCKET_ARN],
    };
    expect(Object.fromEntries(p.Statement.map((statement) => [statement.Sid, resources(statement)]))).toEqual(expected);
    expect(AUDIT_KEY_ARN).not.toBe(KEY_ARN);
    expect(AUDIT_ED25519_KEY_ARN).not.toBe(AUDIT_KEY_ARN);
    // Sign only as the checkpointer does (ECDSA_SHA_256 and pure Ed25519 over the raw note), never a caller-chosen digest.
    const sign = p.Statement.filter((statement) => statement.Action.includes('kms:Sign')).map((statement) => statement.Condition?.StringEquals);
    expect(sign).toEqual([
      { 'kms:SigningAlgorithm': 'ECDSA_SHA_256', 'kms:MessageType': 'RAW' },
      { 'kms:SigningAlgorithm': 'ED25519_SHA_512', 'kms:MessageType': 'RAW' },
    ]);
    expect(p.Statement.find((statement) => statement.Sid === 'ListAuditCheckpoints')?.Condition).toEqual({ StringLike: { 's3:prefix': 'audit-checkpoints/*' } });
  });

  it('lets the rotation jobs re-encrypt between the old and the new key', () => {
    const p = policy('key-admin-policy.json');
    expect(actions(p).sort()).toEqual(['kms:Decrypt', 'kms:DescribeKey', 'kms:GenerateDataKey', 'kms:ReEncryptFrom', 'kms:ReEncryptTo']);
    expect(actions(p).some((a) => a.startsWith('sqs:'))).toBe(false);
    for (const statement of p.Statement) {
      expect(resources(statement)).toContain(KEY_ARN);
      expect(resources(statement)).toHaveLength(2);
    }
  });

  it('lets KEDA read the queue depth only', () => {
    const p = policy('keda-operator-policy.json');
    expect(actions(p)).toEqual(['sqs:GetQueueAttributes']);
    expect(resources(p.Statement[0] as Statement)).toEqual([QUEUE_ARN]);
  });
});
