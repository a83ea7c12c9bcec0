import type { FastifyInstance } from 'fastify';

interface KnownPath {
  pattern: RegExp;
  methods: Set<string>;
}

/**
 * Tells a wrong method on a known path (405 with Allow) from an unknown path (404): Fastify
 * answers both with its not-found handler. Routes are collected as they are added, so the
 * hook must be installed before any route is registered.
 */
export function collectRouteMethods(app: FastifyInstance): (url: string) => string[] | undefined {
  const paths = new Map<string, KnownPath>();
  app.addHook('onRoute', (route) => {
    // A wildcard (static files: /docs/*, /console/*) says nothing about which paths exist.
    if (route.url.includes('*')) return;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    let known = paths.get(route.url);
    if (known === undefined) {
      known = { pattern: patternOf(route.url), methods: new Set() };
      paths.set(route.url, known);
    }
    for (const method of methods) known.methods.add(method.toUpperCase());
  });
  return (url) => {
    const path = url.split('?')[0] ?? url;
    const allowed = new Set<string>();
    for (const known of paths.values()) if (known.pattern.test(path)) for (const method of known.methods) allowed.add(method);
    if (allowed.size === 0) return undefined;
    if (allowed.has('GET')) allowed.add('HEAD');
    return [...allowed].sort();
  };
}

/** `/reveal-requests/:id` → ^/reveal-requests/[^/]+$ */
function patternOf(url: string): RegExp {
  const escaped = url
    .split('/')
    .map((segment) => (segment.startsWith(':') ? '[^/]+' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${escaped}/?$`);
}
