import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { NoteSigner } from '../../lib/audit/note/signer.js';
import { ADD_CHECKPOINT_PATH, SIZE_CONTENT_TYPE } from '../../lib/audit/witness-protocol.js';
import { errorBody } from '../../lib/errors.js';
import type { WitnessConfig } from './config.js';
import type { WitnessStateStore } from './state-store.js';
import { Witness } from './witness.js';

export interface WitnessAppDeps {
  config: Pick<WitnessConfig, 'logs' | 'bodyLimitBytes' | 'logLevel'>;
  store: WitnessStateStore;
  cosigner: NoteSigner;
  logger?: FastifyBaseLogger;
  now?: () => number;
}

const TEXT = 'text/plain; charset=utf-8';

/**
 * The witness's HTTP interface (C2SP tlog-witness), submission and monitoring prefix both "/":
 *   POST /add-checkpoint            old size, consistency proof, checkpoint → cosignature line(s)
 *   GET  /<origin hash>/checkpoint  the latest cosigned checkpoint of a log, with all its signatures
 *   GET  /healthz
 * Refusals other than 409 (whose body the spec fixes) carry the usual JSON error body.
 */
export async function buildWitnessApp(deps: WitnessAppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    ...(deps.logger === undefined ? { logger: { level: deps.config.logLevel } } : { loggerInstance: deps.logger }),
    bodyLimit: deps.config.bodyLimitBytes,
    // Clients should keep connections alive (tlog-witness); be patient with them.
    keepAliveTimeout: 30_000,
  });
  const witness = new Witness({ logs: deps.config.logs, store: deps.store, cosigner: deps.cosigner, logger: app.log, ...(deps.now === undefined ? {} : { now: deps.now }) });

  // The protocol is plain text whatever Content-Type a client sends (the spec names none).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, request, reply) => {
    const status = error.statusCode ?? 500;
    if (status === 413) return reply.code(413).send(errorBody('body_too_large', `the request is larger than ${deps.config.bodyLimitBytes} bytes (WITNESS_BODY_LIMIT_BYTES)`));
    if (status >= 400 && status < 500) return reply.code(status).send(errorBody('bad_request', error.message));
    request.log.error({ err: error }, 'witness request failed');
    return reply.code(500).send(errorBody('witness_failed', 'the witness could not process the request; it cosigned nothing'));
  });
  app.setNotFoundHandler((request, reply) => reply.code(404).send(errorBody('not_found', `no route ${request.method} ${request.url.split('?')[0]}; try POST ${ADD_CHECKPOINT_PATH}`)));

  app.post(ADD_CHECKPOINT_PATH, async (request, reply) => {
    const body = request.body;
    if (!Buffer.isBuffer(body)) return reply.code(400).send(errorBody('bad_request', 'the request has no body'));
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(body);
    } catch {
      return reply.code(400).send(errorBody('bad_request', 'the request body is not valid UTF-8'));
    }
    const outcome = await witness.addCheckpoint(text);
    if (outcome.status === 200) return reply.code(200).type(TEXT).send(outcome.cosignatures);
    if (outcome.status === 409) return reply.code(409).type(SIZE_CONTENT_TYPE).send(`${outcome.size}\n`);
    return reply.code(outcome.status).send(errorBody(outcome.code, outcome.message));
  });

  app.get<{ Params: { originHash: string } }>('/:originHash/checkpoint', async (request, reply) => {
    const state = await deps.store.readByHash(request.params.originHash);
    if (state === undefined) return reply.code(404).send(errorBody('unknown_log', 'this witness has not cosigned a checkpoint of that log (the path is the lower-case hex SHA-256 of the origin)'));
    return reply.code(200).type(TEXT).send(state.checkpoint);
  });

  app.get('/healthz', async () => ({ status: 'ok', witness: witness.verifierKey }));
  return app;
}
