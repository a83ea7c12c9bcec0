import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { auditRowJsonSchema } from '../../../lib/audit/audit-row.js';
import { canonicalize, rowJson } from '../../../lib/audit/chain.js';
import { leafHash } from '../../../lib/audit/merkle/hash.js';
import { ProofRangeError, proveConsistency, proveInclusion, type InclusionProof } from '../../../lib/audit/proofs.js';
import { ROW_COLUMNS, toRow, type RawRow } from '../../../lib/audit/reader.js';
import { inclusionReceipts, notCoveredNote } from '../../../lib/audit/receipts.js';
import type { SignedTreeSize } from '../../../lib/audit/signed-tree.js';
import type { PermissionRule } from '../http/authorize.js';
import { ConflictError, ForbiddenError, HttpError, NotFoundError } from '../http/errors.js';
import { principalOf, type RouteContext } from './context.js';
import { bearerSecurity, errorResponses, errorResponseSchema } from './schemas.js';

const size = z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const base64Hash = z.string().describe('32 bytes, base64');

const checkpointView = z
  .object({ index: z.number().int(), tree_size: z.number().int() })
  .nullable()
  .describe('The newest signed checkpoint (null: none yet). Check the root against your own copy of it, published outside the database');

const inclusionView = z.object({
  tree_size: z.number().int(),
  leaf_index: z.number().int().describe('seq − 1'),
  leaf_hash: base64Hash.describe('SHA-256(0x00 || canonical bytes of the entry)'),
  proof: z.array(base64Hash).describe('RFC 9162 §2.1.3.1 inclusion path, bottom first'),
  root: base64Hash.describe('RFC 9162 root of entries 1..tree_size, from the stored tree'),
});

const receiptView = z.object({
  seq: z.number().int(),
  entry: auditRowJsonSchema,
  canonical: z.string().describe('The entry\'s canonical bytes (RFC 8785 JSON, UTF-8): the Merkle leaf. leaf_hash = SHA-256(0x00 || these bytes)'),
  leaf_hash: base64Hash,
  inclusion: inclusionView.nullable().describe('null: not covered by a signed checkpoint yet (see note)'),
  checkpoint: checkpointView,
  note: z.string().optional(),
});

const b64 = (hash: Buffer) => hash.toString('base64');

export function presentInclusion(proof: InclusionProof): z.infer<typeof inclusionView> {
  return { tree_size: proof.treeSize, leaf_index: proof.leafIndex, leaf_hash: b64(proof.leafHash), proof: proof.proof.map(b64), root: b64(proof.root) };
}

export function presentCheckpoint(checkpoint: SignedTreeSize | undefined): z.infer<typeof checkpointView> {
  return checkpoint === undefined ? null : { index: checkpoint.index, tree_size: checkpoint.size };
}

/** A proof the stored tree cannot give (yet): the caller asked for a size beyond it, or an entry outside the size. */
function proofRefused(error: unknown): unknown {
  if (!(error instanceof ProofRangeError)) return error;
  return error.code === 'tree_size_too_large' ? new ConflictError('tree_size_too_large', error.message) : new HttpError(400, 'invalid_request', error.message);
}

/** The size to prove to: the one asked for, or the newest signed checkpoint's; a refusal saying which is missing. */
async function sizeFor(context: RouteContext, asked: number | undefined, what: string): Promise<{ size: number; checkpoint: SignedTreeSize | undefined }> {
  const checkpoint = await context.signedTreeSize();
  if (asked !== undefined) return { size: asked, checkpoint };
  if (checkpoint === undefined) throw new ConflictError('no_signed_checkpoint', `no checkpoint has been signed yet (the first is signed within one checkpoint interval of the first audit row): ask again then, or name a size with ?${what}=N to prove to the tree as it is now`);
  return { size: checkpoint.size, checkpoint };
}

const auditorOnly: PermissionRule = {
  allows: (permissions) => permissions.audit,
  refuses: 'reading inclusion proofs (ask for your own entries at GET /audit/entries/{seq})',
  denial: () => ({ reason: 'no audit permission' }),
};

/**
 * Proofs over the audit log's Merkle tree (docs/audit-format.md §4). They hold hashes only:
 * not audited, not rate-limited per caller (monitors fetch many). The entry itself (a row) is
 * read through GET /audit/entries/{seq}, which is audited.
 */
export function proofRoutes(context: RouteContext) {
  return async function register(app: FastifyInstance): Promise<void> {
    const routes = app.withTypeProvider<ZodTypeProvider>();

    routes.get('/audit/proofs/inclusion', {
      config: { permission: auditorOnly },
      schema: {
        summary: 'Inclusion proof of one audit entry in the Merkle tree (RFC 9162)',
        description:
          'Proves entry `seq` is leaf seq − 1 of the tree of `tree_size` entries; by default the newest signed checkpoint\'s size. ' +
          'Verify: fold leaf_hash with the proof (RFC 9162 §2.1.3.2) and compare with the root of a checkpoint you hold. ' +
          '409 not_covered: the entry is newer than the newest signed checkpoint; 409 tree_size_too_large: the tree is not that large yet.',
        tags: ['audit'],
        security: bearerSecurity,
        querystring: z.object({ seq: size, tree_size: size.optional() }),
        response: { 200: inclusionView.extend({ seq: z.number().int(), checkpoint: checkpointView }), 409: errorResponseSchema, ...errorResponses },
      },
      handler: async (request) => {
        const { seq, tree_size: asked } = request.query;
        const { size: treeSize, checkpoint } = await sizeFor(context, asked, 'tree_size');
        if (asked === undefined && seq > treeSize) throw new ConflictError('not_covered', notCoveredNote(seq, { checkpoint, treeSize }));
        const proof = await proveInclusion(context.pool, seq, treeSize).catch((error: unknown) => {
          throw proofRefused(error);
        });
        return { seq, ...presentInclusion(proof), checkpoint: presentCheckpoint(checkpoint) };
      },
    });

    routes.get('/audit/proofs/consistency', {
      // Hashes of subtrees only: any verified caller may check that a tree they hold a receipt for grew append-only.
      config: { permission: 'authenticated' },
      schema: {
        summary: 'Consistency proof between two sizes of the audit log\'s Merkle tree (RFC 9162)',
        description:
          'Proves the tree of `from` entries is a prefix of the tree of `to` entries (default: the newest signed checkpoint\'s size): ' +
          'a receipt for an older checkpoint stays valid against a newer one. Empty proof when the sizes are equal or from is 0.',
        tags: ['audit'],
        security: bearerSecurity,
        querystring: z.object({ from: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER), to: size.optional() }),
        response: {
          200: z.object({ from: z.number().int(), to: z.number().int(), proof: z.array(base64Hash), from_root: base64Hash, to_root: base64Hash, checkpoint: checkpointView }),
          409: errorResponseSchema,
          ...errorResponses,
        },
      },
      handler: async (request) => {
        const { from, to: asked } = request.query;
        const { size: to, checkpoint } = await sizeFor(context, asked, 'to');
        if (from > to) throw new HttpError(400, 'invalid_request', `from (${from}) must not be larger than to (${to})`);
        const proof = await proveConsistency(context.pool, from, to).catch((error: unknown) => {
          throw proofRefused(error);
        });
        return { from, to, proof: proof.proof.map(b64), from_root: b64(proof.fromRoot), to_root: b64(proof.toRoot), checkpoint: presentCheckpoint(checkpoint) };
      },
    });

    routes.get('/audit/entries/:seq', {
      // Auditors read any entry, everyone else their own (actor = their subject): a receipt of what they did.
      config: { auditAction: 'audit_read', rateLimit: {}, permission: 'authenticated' },
      schema: {
        summary: 'One audit entry with its receipt: canonical bytes, leaf hash and an inclusion proof to the newest signed checkpoint',
        description:
          'The seq is what reveals, collections and erasures answer with (audit_seq, X-Audit-Seq). Your own entries, or any with the audit permission. ' +
          'Reading it is audited. `inclusion` is null until a signed checkpoint covers the entry; `tree_size` proves to another size.',
        tags: ['audit'],
        security: bearerSecurity,
        params: z.object({ seq: size }),
        querystring: z.object({ tree_size: size.optional() }),
        response: { 200: receiptView, 404: errorResponseSchema, 409: errorResponseSchema, ...errorResponses },
      },
      handler: async (request) => {
        const principal = principalOf(request);
        const { seq } = request.params;
        const { rows } = await context.pool.query<RawRow>({ name: 'audit-entry', text: `SELECT ${ROW_COLUMNS} FROM audit_log WHERE seq = $1`, values: [seq] });
        const raw = rows[0];
        if (raw === undefined) throw new NotFoundError(`no audit entry ${seq}`);
        const row = toRow(raw);
        if (!context.policy.permissionsFor(principal.roles).audit && row.actor !== principal.sub) {
          throw new ForbiddenError('your roles do not allow reading other people\'s audit entries; you may read your own', { reason: `entry seq=${seq}: not the actor`, tokens: [] });
        }
        const receipts = await inclusionReceipts(context.pool, [seq], request.query.tree_size).catch((error: unknown) => {
          throw proofRefused(error);
        });
        const proof = receipts.proofs.get(seq);
        const canonical = canonicalize(row);
        await context.auditor.record(request, { outcome: 'allowed', reason: `entry seq=${seq}`, tokens: [], purpose: null, ticket: null });
        return {
          seq,
          entry: rowJson(row),
          canonical,
          leaf_hash: b64(leafHash(Buffer.from(canonical, 'utf8'))),
          inclusion: proof === undefined ? null : presentInclusion(proof),
          checkpoint: presentCheckpoint(receipts.checkpoint),
          ...(proof === undefined ? { note: notCoveredNote(seq, receipts) } : {}),
        };
      },
    });
  };
}
