import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isTransient } from '../../../lib/errors.js';
import { AuditUnavailableError } from '../../../lib/audit/entry.js';
import { AuthenticationError, AuthUnavailableError } from '../auth/token-verifier.js';
import { actionOf, type AuditOutcome, type Auditor } from './auditor.js';
import { errorBody, HttpError } from './errors.js';
import { RequestValidationError } from './validation.js';
import { SAMPLED_REFUSALS, type RefusalSampler } from './refusal-sampler.js';

export const REALM = 'tokenvault-reveal-api';

interface Refusal {
  status: number;
  code: string;
  /** Safe for clients: never a stack, SQL, or anything from the request body. */
  message: string;
  outcome: AuditOutcome;
  reason: string;
  headers: Record<string, string>;
}

/**
 * One place maps every failure to `{ error: { code, message } }`, writes the attempt's audit
 * row (if the route is audited and the handler has not already), and fails closed with 503
 * when even that row cannot be written.
 */
export function errorHandlerWith(auditor: Auditor, authenticate: (request: FastifyRequest) => Promise<void>, sampler?: RefusalSampler, onSummarised?: (code: string) => void) {
  return async function handleError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    let refusal = classify(await credentialsFirst(error, request, authenticate));
    if (refusal.status >= 500) request.log.error({ err: error, code: refusal.code }, 'request failed');
    else request.log.info({ code: refusal.code, reason: refusal.reason }, 'request refused');

    if (actionOf(request) !== undefined && !request.audited) {
      const attempt = { outcome: refusal.outcome, reason: refusal.reason };
      try {
        // A caller repeating a refusable request as fast as they can gets one row per window, not one per request.
        if (sampler !== undefined && SAMPLED_REFUSALS.has(refusal.code) && !sampler.admit(samplingKey(request, refusal.code), auditor.entryFor(request, attempt))) {
          auditor.committedWithin(request, attempt);
          onSummarised?.(refusal.code);
        } else {
          await auditor.record(request, attempt);
        }
      } catch (auditError) {
        request.log.error({ err: auditError }, 'audit row for a refused request could not be written');
        refusal = classify(new AuditUnavailableError({ cause: auditError }));
      }
    }
    return reply.code(refusal.status).headers(refusal.headers).send(errorBody(refusal.code, refusal.message));
  };
}

/**
 * Body parsing (bad JSON, wrong content type, too large) fails before the authenticate hook
 * runs. The caller is authenticated now: the audit row then names who sent it, and a request
 * without valid credentials gets its 401 first, as it would had the body parsed.
 */
async function credentialsFirst(error: Error, request: FastifyRequest, authenticate: (request: FastifyRequest) => Promise<void>): Promise<Error> {
  if (actionOf(request) === undefined || request.principal !== undefined) return error;
  if (error instanceof AuthenticationError || error instanceof AuthUnavailableError) return error;
  try {
    await authenticate(request);
    return error;
  } catch (authError) {
    return authError instanceof Error ? authError : error;
  }
}

function samplingKey(request: FastifyRequest, code: string): string {
  return JSON.stringify([request.principal === undefined ? `ip:${request.ip}` : `sub:${request.principal.sub}`, actionOf(request), code]);
}

function classify(error: FastifyError | Error): Refusal {
  const refusal = (status: number, code: string, message: string, outcome: AuditOutcome, reason: string = code, headers: Record<string, string> = {}): Refusal => ({
    status,
    code,
    message,
    outcome,
    reason,
    headers,
  });

  if (error instanceof AuthenticationError) {
    const challenge =
      error.reason === 'token_missing'
        ? `Bearer realm="${REALM}"`
        : `Bearer realm="${REALM}", error="invalid_token", error_description="${error.message.replaceAll('"', "'")}"`;
    return refusal(401, 'unauthenticated', error.message, 'unauthenticated', error.reason, { 'www-authenticate': challenge });
  }
  if (error instanceof AuditUnavailableError) {
    return refusal(503, 'audit_unavailable', 'the audit log cannot be written; nothing was revealed, retry later', 'failed', 'audit_unavailable', {
      'retry-after': '5',
    });
  }
  if (error instanceof AuthUnavailableError) {
    return refusal(503, 'auth_unavailable', 'token verification keys are unavailable, retry later', 'failed', 'auth_unavailable', { 'retry-after': '5' });
  }
  if (error instanceof HttpError) {
    const outcome: AuditOutcome = error.statusCode === 403 ? 'denied' : error.statusCode === 429 ? 'rate_limited' : error.statusCode >= 500 ? 'failed' : 'invalid';
    return refusal(error.statusCode, error.code, error.message, outcome, error.code, error.headers);
  }
  if (error instanceof RequestValidationError) {
    return refusal(400, 'invalid_request', error.describe(), 'invalid', 'validation_failed');
  }
  const fastifyCode = (error as FastifyError).code;
  switch (fastifyCode) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return refusal(413, 'payload_too_large', 'the request body is too large', 'invalid');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return refusal(415, 'unsupported_media_type', 'send the body as application/json', 'invalid');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return refusal(400, 'invalid_json', 'the request body is empty', 'invalid');
    default:
      break;
  }
  const status = (error as FastifyError).statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    // JSON.parse messages quote the body: never echo them (they may hold values).
    const code = error instanceof SyntaxError || fastifyCode === 'FST_ERR_CTP_INVALID_JSON_BODY' ? 'invalid_json' : 'bad_request';
    return refusal(status, code, code === 'invalid_json' ? 'the request body is not valid JSON' : 'the request cannot be processed', 'invalid');
  }
  if (isTransient(error)) {
    return refusal(503, 'unavailable', 'a dependency is unavailable; nothing was revealed, retry later', 'failed', 'dependency_unavailable', { 'retry-after': '5' });
  }
  return refusal(500, 'internal', 'internal error; nothing was revealed', 'failed', 'internal_error');
}
