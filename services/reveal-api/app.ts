import { randomUUID } from 'node:crypto';
import fastifyRateLimit from '@fastify/rate-limit';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { jsonSchemaTransform, serializerCompiler } from 'fastify-type-provider-zod';
import type { Database } from '../../db/client.js';
import { ConfigError } from '../../lib/errors.js';
import { ActiveTokenKey } from '../../lib/keys/active-token-key.js';
import { LoginRowAuthenticator } from '../../lib/keys/login-row-keys.js';
import { DataKeyRing } from '../../lib/keys/data-key-ring.js';
import { packageInfo } from '../../lib/package-info.js';
import type { KeyProvider } from '../../lib/keys/key-provider.js';
import type { AuditSigner } from '../../lib/keys/audit-signer.js';
import { createAuditSigner } from '../../lib/keys/create-audit-signer.js';
import { AuditCheckpointer } from './audit/checkpoints/checkpointer.js';
import { AuditChainMonitor } from './audit/monitor.js';
import { AuditExporter } from './audit/exporter.js';
import { processEnv } from '../../lib/config/env.js';
import { CheckpointPublisher } from './audit/checkpoints/publisher.js';
import { FileCheckpointSink, LogCheckpointSink, S3CheckpointSink, type CheckpointSink } from './audit/checkpoints/sinks.js';
import { CheckpointAnchor } from './audit/checkpoints/anchor.js';
import { createNoteSigners } from './audit/checkpoints/note-signers.js';
import { RowChecker } from './audit/checkpoints/row-checker.js';
import { storedTree } from './audit/checkpoints/stored-tree.js';
import { parseVerifierKey } from '../../lib/audit/note/vkey.js';
import { storedCheckpointsAfter } from '../../lib/audit/reader.js';
import type { WitnessEndpoint } from '../../lib/audit/witness-client.js';
import { ApprovalDesk } from './approvals/desk.js';
import { webhookNotifier } from './approvals/notifier.js';
import { AuditWriter } from '../../lib/audit/writer.js';
import { withBudgets } from '../../lib/budget/charges.js';
import { SignedTreeSizeCache } from '../../lib/audit/signed-tree.js';
import type { LocalSigningKey } from '../../lib/auth/local-signing-key.js';
import { ExhaustedBudgets, limitsFor } from './budget/standing.js';
import { BudgetReconciler } from './budget/reconciler.js';
import { createJwtVerifier } from './auth/jwt-verifier.js';
import type { RevealConfig } from './config.js';
import { authenticateWith } from './http/authenticate.js';
import { registerAuthorization } from './http/authorize.js';
import { actionOf, Auditor } from './audit/auditor.js';
import { errorHandlerWith } from './http/error-handler.js';
import { errorBody, RateLimitedError } from './http/errors.js';
import { registerAddressGuard } from './http/flood-guard.js';
import { collectRouteMethods } from './http/method-not-allowed.js';
import { RouteOnlyLogController } from './http/request-log.js';
import { collectRoutes, type RouteEntry } from './http/request-shape.js';
import { validatorCompiler } from './http/validation.js';
import { REFUSAL_FLUSH_MS, RefusalSampler } from './audit/refusal-sampler.js';
import { RefusalWindows } from './audit/refusal-windows.js';
import './http/fastify-types.js';
import { createRevealMetrics, type RevealMetrics } from './metrics.js';
import { Policy } from './policy/policy.js';
import { approvalRoutes } from './routes/approvals.js';
import { auditRoutes } from './routes/audit.js';
import { consoleRoutes } from './routes/console.js';
import type { RouteContext } from './routes/context.js';
import { eraseRoutes } from './routes/erase.js';
import { meRoutes } from './routes/me.js';
import { operationsRoutes } from './routes/operations.js';
import { personRoutes } from './routes/persons.js';
import { proofRoutes } from './routes/proofs.js';
import { revealRoutes } from './routes/reveal.js';
import { rootRoutes } from './routes/root.js';
import { revealRequestRoutes } from './routes/reveal-requests.js';
import { tokenizeRoutes } from './routes/tokenize.js';
import { Vault } from './vault/vault.js';
import { Reveals } from './reveal/reveal.js';

export interface RevealDeps {
  config: RevealConfig;
  /** Pool running as the reveal_api role (SELECT/DELETE on pii_vault, SELECT/INSERT on audit_log). */
  database: Database;
  keys: KeyProvider;
  /** A pino logger; otherwise one is created at config.logLevel. */
  logger?: FastifyBaseLogger;
  /** Overrides the checkpoint signer built from config.auditCheckpoints (the caller then owns it). */
  auditSigner?: AuditSigner;
  /** Extra checkpoint sinks (tests). */
  auditSinks?: CheckpointSink[];
  /** The local stack's signing key, for the console's local sign-in (config.console.localSignIn). */
  localSigningKey?: LocalSigningKey;
  /** Benchmarks only: false writes audit rows without their Merkle nodes (what the tree costs); the tree then lags. */
  auditTreeNodes?: boolean;
}

export type RevealApp = FastifyInstance & {
  revealMetrics: RevealMetrics;
  auditCheckpointer: AuditCheckpointer | undefined;
  /** Every route registered (method, pattern, declared query parameters). */
  routeList: readonly RouteEntry[];
  budgetReconciler: BudgetReconciler;
};

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** How often requests past their expiry get their reveal.expire row without anyone asking. */
const EXPIRY_SWEEP_MS = 30_000;

/**
 * The reveal API as a Fastify instance that is ready but never listens (main.ts and the
 * local stack do that; tests use inject). Closing it flushes pending audit rows and forgets
 * the unwrapped data keys; the database and key provider belong to the caller.
 */
export async function buildRevealApp(deps: RevealDeps): Promise<RevealApp> {
  const { config, database, keys } = deps;
  if (config.console.localSignIn && deps.localSigningKey === undefined) {
    throw new ConfigError('CONSOLE_LOCAL_SIGN_IN needs the local stack\'s signing key (npm start)', ['CONSOLE_LOCAL_SIGN_IN']);
  }
  const policy = await Policy.load(config.policyFile);
  const verifier = createJwtVerifier(config.jwt);
  const metrics = createRevealMetrics();
  const auditWriter = new AuditWriter(
    database.pool,
    withBudgets({
      lockTimeoutMs: config.auditLockTimeoutMs,
      onCommitted: (seconds) => metrics.auditWrite.observe(seconds),
      onBatch: (size) => metrics.auditBatchSize.observe(size),
      treeNodes: deps.auditTreeNodes ?? true,
      treeCatchUp: {
        onDone: (extension) => {
          // `app` exists by then: a catch-up starts after app.ready() or after an append.
          if (extension.size > extension.from) app.log.warn({ from: extension.from, size: extension.size }, 'Merkle tree caught up over audit rows written without nodes');
        },
        onError: (error) => {
          metrics.auditTreeCatchUpFailures.inc();
          app.log.error({ err: error }, 'the Merkle tree cannot catch up with the audit log; rows are appended without nodes until it does');
        },
      },
    }),
  );
  const ring = new DataKeyRing(database.db, keys, config.dataKeyPolicy);
  const checkpoints = config.auditCheckpoints;
  const ownSigner = deps.auditSigner === undefined && checkpoints !== undefined ? await createAuditSigner(checkpoints.signer) : undefined;
  const auditSigner = deps.auditSigner ?? ownSigner;
  // Its callbacks log through `app`, which exists before the first flush.
  const refusals = new RefusalSampler({
    windowMs: config.rateLimit.windowMs,
    store: new RefusalWindows(database.pool, { lockTimeoutMs: config.auditLockTimeoutMs }),
    onError: (step, error) => app.log.warn({ err: error, step }, 'refusal counts could not be stored or summarised; kept in memory and retried'),
    onRecovered: (count) => {
      metrics.refusalsRecovered.inc(count);
      app.log.warn({ refusals: count }, 'summarised refusals counted by a replica that stopped without writing them');
    },
  });
  const auditor = new Auditor({ writer: auditWriter, pool: database.pool, metrics, sampler: refusals, lockTimeoutMs: config.auditLockTimeoutMs });
  const vault = new Vault(database.pool, ring);
  const exhaustedBudgets = new ExhaustedBudgets();
  const reveals = new Reveals({ vault, auditor, metrics, exhaustedBudgets });

  const app = Fastify({
    ...(deps.logger === undefined
      ? {
          logger: {
            level: config.logLevel,
            // Headers are not logged by default; if a serializer ever adds them, tokens stay out.
            redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization'], censor: '[redacted]' },
          },
        }
      : { loggerInstance: deps.logger }),
    // Request logs name the route pattern and the query parameters' names, never a URL (values travel in URLs).
    logController: new RouteOnlyLogController(),
    bodyLimit: config.bodyLimitBytes,
    trustProxy: trustProxyOption(config.trustProxy),
    requestIdHeader: false,
    // A caller's X-Request-Id is kept for correlation only when it is short and plain.
    genReqId: (request) => {
      const header = request.headers['x-request-id'];
      return typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID();
    },
  });
  // JSON only: anything else is a 415, not a string the validator then trips over.
  app.removeContentTypeParser('text/plain');
  // The default JSON parser, keeping the text it parsed: a refusal without a verified identity is
  // audited by its size and SHA-256, never its content.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    request.rawBody = body as string;
    parseJson(request, body as string, done);
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.decorateRequest('principal', undefined);
  app.decorateRequest('audited', false);
  app.decorateRequest('auditSeq', undefined);
  app.decorateRequest('rawBody', undefined);
  app.decorate('revealMetrics', metrics);
  const noteSigners = auditSigner === undefined || checkpoints === undefined ? undefined : await createNoteSigners(checkpoints, auditSigner);
  const logKeys = noteSigners?.signers.map((signer) => parseVerifierKey(signer.verifierKey)) ?? [];
  const witnesses: WitnessEndpoint[] = (checkpoints?.witnesses ?? []).map((witness) => ({ url: witness.url, verifier: parseVerifierKey(witness.vkey) }));
  // Proofs default to the newest signed checkpoint: read once a second, and at once after this replica signs one.
  const signedTreeSize = new SignedTreeSizeCache(database.pool);
  const checkpointer = auditSigner === undefined || checkpoints === undefined || noteSigners === undefined ? undefined : buildCheckpointer(app.log);
  app.decorate('auditCheckpointer', checkpointer);

  function buildCheckpointer(logger: FastifyBaseLogger): AuditCheckpointer {
    const options = checkpoints!;
    const sinks: CheckpointSink[] = [...(deps.auditSinks ?? [])];
    if (options.file !== undefined) sinks.push(new FileCheckpointSink(options.file));
    if (options.log) sinks.push(new LogCheckpointSink(logger));
    if (options.s3 !== undefined) sinks.push(new S3CheckpointSink({ ...options.s3, origin: options.origin }));
    const publisher = new CheckpointPublisher(sinks, {
      logger,
      load: (afterIndex, limit) => storedCheckpointsAfter(database.pool, afterIndex, limit),
      onFailure: (sink) => metrics.auditSinkFailures.inc({ sink }),
      onPending: (sink, count) => metrics.auditSinkPending.set({ sink }, count),
    });
    const anchor = new CheckpointAnchor({
      origin: options.origin,
      publicKey: auditSigner!.publicKey,
      logKeys,
      sinks,
      witnesses,
      witnessTimeoutMs: options.witnessTimeoutMs,
      logger,
    });
    return new AuditCheckpointer(
      { pool: database.pool, tree: storedTree, signers: noteSigners!.signers, anchor, publisher, rowChecker: new RowChecker(config.database), witnesses },
      {
        origin: options.origin,
        intervalMs: options.intervalMs,
        logger,
        witnessTimeoutMs: options.witnessTimeoutMs,
        onWritten: (_record, size) => {
          signedTreeSize.invalidate();
          metrics.auditCheckpoints.inc();
          metrics.auditCheckpointSeq.set(size);
        },
        onFailure: (reason) => metrics.auditCheckpointFailures.inc({ reason }),
        onCosignature: (witness, result) => metrics.auditCosignatures.inc({ witness, result }),
      },
    );
  }
  const budgetReconciler = new BudgetReconciler(database.pool, auditor, (roles, action) => limitsFor(policy.permissionsFor(roles), action === 'reveal.break_glass'), {
    intervalMs: config.budgetReconcileIntervalMs,
    lockTimeoutMs: config.auditLockTimeoutMs,
    logger: app.log,
    onMismatch: (mismatch) => metrics.budgetMismatch.inc({ budget: mismatch.budget }),
  });
  app.decorate('budgetReconciler', budgetReconciler);
  const auditExporter = new AuditExporter({
    database: config.database,
    maxConcurrent: config.auditExportsMax,
    rowsPerSecond: config.auditExportRowsPerSecond,
    env: processEnv(),
    logger: app.log,
  });
  const context: RouteContext = {
    pool: database.pool,
    policy,
    vault,
    tokenizer: new ActiveTokenKey(database, keys),
    loginRows: new LoginRowAuthenticator(database.pool, keys),
    auditor,
    auditMonitor: new AuditChainMonitor(database.pool, {
      publicKey: auditSigner?.publicKey,
      logKeys,
      witnessKeys: witnesses.map((witness) => witness.verifier),
      origin: checkpoints?.origin,
    }),
    auditSigner,
    checkpoints: checkpointer?.state,
    metrics,
    signedTreeSize: () => signedTreeSize.get(),
    reveals,
    approvals: new ApprovalDesk({
      pool: database.pool,
      policy,
      reveals,
      auditor,
      metrics,
      logger: app.log,
      notify: webhookNotifier(config.approvalWebhookUrl, app.log, (ok) => metrics.approvalWebhook.inc({ result: ok ? 'ok' : 'failed' })),
    }),
    budgetReconciler,
    auditExporter,
    authenticate: authenticateWith(verifier),
  };
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
    // The attempt's audit entry, refusals included: its receipt is GET /audit/entries/{seq}.
    if (request.auditSeq !== undefined) reply.header('x-audit-seq', String(request.auditSeq));
    reply.header('cache-control', 'no-store');
  });

  const allowedMethods = collectRouteMethods(app);
  const { version } = await packageInfo();
  app.decorate('routeList', collectRoutes(app));
  await app.register(fastifySwagger, {
    openapi: {
      info: {
        title: 'tokenvault reveal API',
        description: 'Audited recovery of tokenised PII. Every attempt is written to a hash-chained audit log before any value is returned.',
        version,
      },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
    transform: jsonSchemaTransform,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });
  await app.register(fastifyRateLimit, {
    // Only routes that opt in (config.rateLimit) are limited per subject, after authentication:
    // keyed by the caller's identity, so one identity cannot bulk-reveal the vault from many
    // addresses. Before authentication, every route that needs a bearer token is guarded per
    // address (registerAddressGuard below).
    global: false,
    hook: 'preValidation',
    max: config.rateLimit.max,
    timeWindow: config.rateLimit.windowMs,
    keyGenerator: (request) => (request.principal === undefined ? `ip:${request.ip}` : `sub:${request.principal.sub}`),
    onExceeded: (request) => metrics.rateLimited.inc({ action: actionOf(request) ?? 'unknown' }),
    errorResponseBuilder: (_request, limit) => new RateLimitedError(limit.after),
  });

  const addressGuard = registerAddressGuard(app, {
    max: config.rateLimit.addressMax,
    windowMs: config.rateLimit.windowMs,
    onRefused: (request) => metrics.addressGuardHits.inc({ action: actionOf(request) ?? 'unknown' }),
  });
  app.setErrorHandler(
    errorHandlerWith({
      auditor: context.auditor,
      authenticate: context.authenticate,
      addressGuard,
      onSummarised: (code) => metrics.refusalsSummarised.inc({ code }),
    }),
  );
  app.setNotFoundHandler((request, reply) => {
    const allowed = allowedMethods(request.url);
    if (allowed === undefined) return reply.code(404).send(errorBody('not_found', 'no such route'));
    return reply
      .code(405)
      .header('allow', allowed.join(', '))
      .send(errorBody('method_not_allowed', `${request.method} is not allowed here; this path answers ${allowed.join(', ')}`));
  });

  registerAuthorization(app, { authenticate: context.authenticate, policy });
  await app.register(revealRoutes(context));
  await app.register(tokenizeRoutes(context));
  await app.register(eraseRoutes(context));
  await app.register(auditRoutes(context));
  await app.register(proofRoutes(context));
  await app.register(approvalRoutes(context));
  await app.register(revealRequestRoutes(context));
  await app.register(meRoutes(context));
  await app.register(personRoutes(context));
  await app.register(operationsRoutes(context, keys));
  await app.register(rootRoutes({ consoleEnabled: config.console.enabled, version }));
  if (config.console.enabled) await app.register(consoleRoutes(context, { config: config.console, localSigningKey: deps.localSigningKey }));

  const timers = [
    // Stores refusal counts (what a kill -9 may lose is at most this interval's), writes closed windows' summaries.
    setInterval(() => void refusals.flush(), REFUSAL_FLUSH_MS),
    setInterval(
      () => void context.approvals.expireDue().catch((error: unknown) => app.log.warn({ err: error }, 'expiring reveal requests failed')),
      EXPIRY_SWEEP_MS,
    ),
  ];
  for (const timer of timers) timer.unref();

  app.addHook('onClose', async () => {
    for (const timer of timers) clearInterval(timer);
    await budgetReconciler.close();
    auditExporter.close();
    await refusals.close();
    await auditWriter.close();
    // After the last audit row: the final checkpoint covers everything this replica wrote.
    await checkpointer?.close();
    ownSigner?.close();
    noteSigners?.close();
    ring.clear();
  });
  await app.ready();
  // Summaries of refusals a replica counted but did not write before it stopped (kill -9).
  void refusals.flush();
  // Leaves for rows an older version wrote without them (a rolling upgrade); nothing to do normally.
  auditWriter.catchUpTree();
  checkpointer?.start();
  budgetReconciler.start();
  if (checkpointer !== undefined) {
    app.log.info(
      { keyId: auditSigner?.keyId, signer: auditSigner?.label, vkeys: noteSigners?.signers.map((signer) => signer.verifierKey), witnesses: witnesses.map((witness) => witness.url), intervalMs: checkpoints?.intervalMs },
      'audit checkpoints enabled',
    );
  } else {
    app.log.warn('audit checkpoints are DISABLED: the audit log holds only against people without database rights (set AUDIT_SIGNING_KEY_ID)');
  }
  return app as unknown as RevealApp;
}

/** A hop count trusts that many proxies in front of the service. */
function trustProxyOption(setting: RevealConfig['trustProxy']): boolean | string[] | ((address: string, hop: number) => boolean) {
  return typeof setting === 'number' ? (_address, hop) => hop < setting : setting;
}
