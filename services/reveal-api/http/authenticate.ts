import type { FastifyRequest } from 'fastify';
import { AuthenticationError, type JwtVerifier } from '../auth/jwt-verifier.js';

const BEARER = /^Bearer[ ]+([A-Za-z0-9._~+/=-]+)[ ]*$/i;

/** preValidation hook: runs after the body is parsed, so a refused attempt is audited with the tokens it asked for. */
export function authenticateWith(verifier: JwtVerifier) {
  return async function authenticate(request: FastifyRequest): Promise<void> {
    const header = request.headers.authorization;
    if (header === undefined || header.trim() === '') throw new AuthenticationError('token_missing', 'a bearer token is required');
    const match = BEARER.exec(header);
    if (match?.[1] === undefined) throw new AuthenticationError('malformed_authorization', 'expected "Authorization: Bearer <token>"');
    request.principal = await verifier.verify(match[1]);
  };
}
