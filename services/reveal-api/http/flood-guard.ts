import { normalizeIP } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from './errors.js';

/**
 * Who a refusal is accounted to: the verified subject, or else the client address (honouring
 * TRUST_PROXY through request.ip; IPv6 by /64, IPv4-mapped IPv6 as IPv4, as the rate limiter
 * keys it: one host rarely has fewer addresses than that).
 */
export function sourceOf(request: FastifyRequest): string {
  return request.principal === undefined ? addressOf(request) : `sub:${request.principal.sub}`;
}

function addressOf(request: FastifyRequest): string {
  return `addr:${normalizeIP(request.ip)}`;
}

/** An address that sent too many requests without valid credentials: refused before its body is read or its token verified. */
export class AddressFloodedError extends HttpError {
  constructor(retryAfterSeconds: number) {
    const seconds = String(Math.max(1, retryAfterSeconds));
    super(429, 'rate_limited', `too many requests without valid credentials from this address, retry in ${seconds} s`, {
      headers: { 'retry-after': seconds },
      auditReason: 'rate_limited scope=address',
    });
  }
}

export interface AddressGuardOptions {
  /** Refusals without a verified identity per address and window before the address is refused outright. */
  max: number;
  windowMs: number;
  onRefused: (request: FastifyRequest) => void;
}

export interface AddressGuard {
  /** Counts a refusal of a request that had no verified identity against its address. */
  noteUnverifiedRefusal(request: FastifyRequest): Promise<void>;
}

/**
 * The flood guard that runs before authentication (onRequest: before the body is read, before
 * any JWT is verified, before anything is audited), on every route that needs a bearer token.
 * It is keyed by client address and counts what an anonymous flood produces, refusals of
 * requests without a verified identity (401, and 413/415/400 of such requests): once an
 * address has `max` of them in a window, its requests are answered 429 at once until the
 * window ends. Callers with valid credentials are not counted here (a proxy's address shared
 * by many users is not throttled); they are limited per subject after authentication
 * (RATE_LIMIT_MAX). Call after @fastify/rate-limit is registered and before any route.
 */
export function registerAddressGuard(app: FastifyInstance, options: AddressGuardOptions): AddressGuard {
  // `cache`: addresses tracked at once (an LRU; the typings omit it, the store honours it).
  const limiter = app.createRateLimit({ max: options.max, timeWindow: options.windowMs, keyGenerator: addressOf, ...{ cache: 10_000 } });
  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.config.permission === undefined) return;
    const state = await limiter(request, { increment: false });
    if (state.isAllowed || state.remaining > 0) return;
    options.onRefused(request);
    throw new AddressFloodedError(state.ttlInSeconds);
  });
  return {
    async noteUnverifiedRefusal(request) {
      await limiter(request);
    },
  };
}
