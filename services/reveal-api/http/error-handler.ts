import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isTransient } from '../../../lib/errors.js';
import { AuditUnavailableError } from '../../../lib/audit/entry.js';
import { AuthenticationError, AuthUnavailableError } from '../auth/jwt-verifier.js';
import { actionOf, type Attempt, type AuditOutcome, type Auditor } from '../audit/auditor.js';
import { errorBody, ForbiddenError, HttpError } from './errors.js';
import { AddressFloodedError, sourceOf, type AddressGuard } from './flood-guard.js';
import { bodyBytes, describeUnverified } from './request-shape.js';
import { RequestValidationError } from './validation.js';

export const REALM = 'tokenvault-reveal-api';

/** Refusals a caller can repeat as fast as they can send requests: each is accounted per source and window (first row, then a summary). */
const SAMPLED_STATUSES: ReadonlySet<number> = new Set([401, 403, 413, 415, 429]);

interface Refusal {
  status: number;
  code: string;
  /** Safe for clients: never a stack, SQL, or anything from the request body. */
  message: string;
  outcome: AuditOutcome;
  reason: string;
  headers: Record<string, string>;
}

export interface ErrorHandlerDeps {
  auditor: Auditor;
  authenticate: (request: FastifyRequest) => Promise<void>;
  addressGuard: AddressGuard;
  onSummarised?: (code: string) => void;
}

/**
 * One place maps every failure to `{ error: { code, message } }`, writes the attempt's audit
 * row (if the route is audited and the handler has not already), and fails closed with 503
 * when even that row cannot be written. Refusals a caller can repeat at will (401, 403, 413,
 * 415, 429, and every refusal of a request without a verified identity) are accounted per
 * source (subject, or address) and window: the first gets its row before the answer leaves,
 * the rest one summary row (Auditor.record with `sample`, audit/refusal-sampler.ts).
 */
export function errorHandlerWith(deps: ErrorHandlerDeps) {
  return async function handleError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    // The address guard refuses before authentication, on purpose: nothing is verified for a flooding address.
    const resolved = error instanceof AddressFloodedError ? error : await credentialsFirst(error, request, deps.authenticate);
    let refusal = classify(resolved);
    if (refusal.status >= 500) request.log.error({ err: error, code: refusal.code }, 'request failed');
    else request.log.info({ code: refusal.code, reason: refusal.reason }, 'request refused');

    const unverified = request.principal === undefined;
    if (unverified && refusal.status < 500 && !(resolved instanceof AddressFloodedError) && request.routeOptions.config.permission !== undefined) {
      await deps.addressGuard.noteUnverifiedRefusal(request);
    }

    if (actionOf(request) !== undefined && !request.audited) {
      const attempt: Attempt = {
        ...(resolved instanceof ForbiddenError ? resolved.denial : {}),
        outcome: refusal.outcome,
        reason: unverified ? `${refusal.reason} ${describeUnverified(request, claimedBy(resolved))}` : refusal.reason,
      };
      try {
        if (unverified || SAMPLED_STATUSES.has(refusal.status)) {
          // By source, action and code (and why, for a 401): one row per window for each, then a summary.
          const key = [sourceOf(request), attempt.action ?? actionOf(request) ?? 'unknown', refusal.code, ...(resolved instanceof AuthenticationError ? [resolved.reason] : [])];
          const recorded = await deps.auditor.record(request, attempt, { sample: { key, code: refusal.code, bytes: unverified ? bodyBytes(request) : 0 } });
          if (recorded.seq === undefined) deps.onSummarised?.(refusal.code);
        } else {
          await deps.auditor.record(request, attempt);
        }
      } catch (auditError) {
        request.log.error({ err: auditError }, 'audit row for a refused request could not be written');
        refusal = classify(new AuditUnavailableError({ cause: auditError }));
      }
    }
    return reply.code(refusal.status).headers(refusal.headers).send(errorBody(refusal.code, refusal.message));
  };
}

function claimedBy(error: Error): { sub?: string; role?: string } {
  return error instanceof AuthenticationError || error instanceof AuthUnavailableError ? error.claimed : {};
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
    return refusal(401, error.code, error.message, 'unauthenticated', error.reason, { 'www-authenticate': challenge });
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
    return refusal(error.statusCode, error.code, error.message, outcome, error.auditReason, error.headers);
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
