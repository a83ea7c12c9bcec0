import type { FastifyInstance, FastifyRequest, preValidationHookHandler } from 'fastify';
import type { Permissions, Policy } from '../policy/policy.js';
import { actionOf, type Attempt } from '../audit/auditor.js';
import { ForbiddenError } from './errors.js';

/** One thing a route needs the caller's roles to allow. */
export interface PermissionRule {
  allows: (permissions: Permissions, request: FastifyRequest) => boolean;
  /** Completes "your roles do not allow …", the 403 message. */
  refuses: string | ((request: FastifyRequest) => string);
  /** The refusal's audit row (outcome denied): its reason, and what differs from the route's defaults. */
  denial: (request: FastifyRequest) => Omit<Attempt, 'outcome'>;
}

/**
 * Declared in a route's `config.permission`. `authenticated`: any verified caller, because what
 * they may see is decided item by item (their own requests, their own budgets). Rules are
 * checked in order; the first that fails refuses the request.
 */
export type RoutePermission = 'authenticated' | PermissionRule | readonly PermissionRule[];

export interface AuthorizationDeps {
  authenticate: (request: FastifyRequest) => Promise<void>;
  policy: Policy;
}

/**
 * Authorization declared per route, enforced in one place: a route that declares a permission
 * is authenticated first (preValidation, so rate limits key on the caller), and checked after
 * validation (preHandler); the 403 carries its denial, which the error handler audits before it leaves. A route that is
 * audited or documented as needing a bearer token but declares no permission does not start.
 * Call before registering routes.
 */
export function registerAuthorization(app: FastifyInstance, deps: AuthorizationDeps): void {
  app.addHook('onRoute', (route) => {
    const permission = route.config?.permission;
    if (permission === undefined) {
      const needsCaller = route.config?.auditAction !== undefined || route.schema?.security !== undefined;
      if (needsCaller) throw new Error(`${String(route.method)} ${route.url} is audited or needs a bearer token but declares no config.permission`);
      return;
    }
    route.preValidation = [deps.authenticate as preValidationHookHandler, ...hooksOf(route.preValidation)];
  });

  app.addHook('preHandler', async (request) => {
    const permission = request.routeOptions.config.permission;
    if (permission === undefined || permission === 'authenticated') return;
    const principal = request.principal;
    if (principal === undefined) throw new Error('route reached without authentication');
    const permissions = deps.policy.permissionsFor(principal.roles);
    for (const rule of rulesOf(permission)) {
      if (rule.allows(permissions, request)) continue;
      // The error handler audits the refusal like every other (first per caller and window, then a
      // summary). Unaudited reads (listing pending approvals) refuse without a row, as they answer without one.
      const denial = actionOf(request) === undefined ? undefined : rule.denial(request);
      throw new ForbiddenError(`your roles do not allow ${typeof rule.refuses === 'string' ? rule.refuses : rule.refuses(request)}`, denial);
    }
  });
}

function rulesOf(permission: PermissionRule | readonly PermissionRule[]): readonly PermissionRule[] {
  return isRuleList(permission) ? permission : [permission];
}

function isRuleList(permission: PermissionRule | readonly PermissionRule[]): permission is readonly PermissionRule[] {
  return Array.isArray(permission);
}

function hooksOf(hooks: preValidationHookHandler | preValidationHookHandler[] | undefined): preValidationHookHandler[] {
  if (hooks === undefined) return [];
  return Array.isArray(hooks) ? hooks : [hooks];
}
