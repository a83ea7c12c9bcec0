import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../lib/errors.js';
import { DEFAULT_POLICY_FILE, loadRevealConfig } from '../../../services/reveal-api/config.js';

const BASE = {
  DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/tokenvault',
  KMS_KEY_ID: 'alias/tokenvault',
  JWT_JWKS_URL: 'https://idp.example.com/.well-known/jwks.json',
  JWT_ISSUER: 'https://idp.example.com/',
  JWT_AUDIENCE: 'tokenvault-reveal-api',
};

function configError(env: Record<string, string | undefined>): ConfigError {
  try {
    loadRevealConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('loadRevealConfig', () => {
  it('applies safe defaults', () => {
    const config = loadRevealConfig(BASE);
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 3000,
      database: { role: 'reveal_api', poolSize: 10 },
      jwt: { source: { kind: 'jwks', url: BASE.JWT_JWKS_URL }, rolesClaim: 'roles', audience: ['tokenvault-reveal-api'], clockToleranceSeconds: 5 },
      policyFile: DEFAULT_POLICY_FILE,
      rateLimit: { max: 60, windowMs: 60_000 },
      trustProxy: false,
    });
  });

  it('requires a key source, naming JWT_JWKS_URL', () => {
    const error = configError({ ...BASE, JWT_JWKS_URL: undefined });
    expect(error.settings).toContain('JWT_JWKS_URL');
  });

  it('requires JWT_ISSUER and JWT_AUDIENCE', () => {
    expect(configError({ ...BASE, JWT_ISSUER: undefined, JWT_AUDIENCE: '' }).settings).toEqual(expect.arrayContaining(['JWT_ISSUER', 'JWT_AUDIENCE']));
  });

  it('uses the one key source that is set', () => {
    const secret = 'x'.repeat(32);
    expect(loadRevealConfig(BASE).jwt.source.kind).toBe('jwks');
    expect(loadRevealConfig({ ...BASE, JWT_JWKS_URL: undefined, JWT_PUBLIC_KEY: '{}' }).jwt.source.kind).toBe('public-key');
    expect(loadRevealConfig({ ...BASE, JWT_JWKS_URL: undefined, JWT_SECRET: secret }).jwt.source).toEqual({ kind: 'secret', secret });
  });

  it('refuses two key sources at once, naming both, instead of silently picking one', () => {
    const secret = 'x'.repeat(32);
    const both = configError({ ...BASE, JWT_SECRET: secret });
    expect(both.message).toMatch(/JWT_JWKS_URL and JWT_SECRET/);
    expect(both.settings).toContain('JWT_SECRET');
    expect(configError({ ...BASE, JWT_JWKS_URL: undefined, JWT_PUBLIC_KEY: '{}', JWT_SECRET: secret }).message).toMatch(/JWT_PUBLIC_KEY and JWT_SECRET/);
    expect(configError({ ...BASE, JWT_PUBLIC_KEY: '{}', JWT_SECRET: secret }).message).toMatch(/JWT_JWKS_URL and JWT_PUBLIC_KEY and JWT_SECRET/);
  });

  it('refuses HS algorithms next to an asymmetric key, short secrets and unknown algorithms', () => {
    expect(configError({ ...BASE, JWT_ALGORITHMS: 'RS256,HS256' }).settings).toEqual(['JWT_ALGORITHMS']);
    expect(configError({ ...BASE, JWT_ALGORITHMS: 'none' }).settings).toEqual(['JWT_ALGORITHMS']);
    expect(configError({ ...BASE, JWT_JWKS_URL: undefined, JWT_SECRET: 'short' }).settings).toContain('JWT_SECRET');
  });

  it('parses durations, proxy trust and audience lists', () => {
    const config = loadRevealConfig({ ...BASE, RATE_LIMIT_WINDOW: '15m', TRUST_PROXY: '10.0.0.0/8, 127.0.0.1', JWT_AUDIENCE: 'a, b' });
    expect(config.rateLimit.windowMs).toBe(900_000);
    expect(config.trustProxy).toEqual(['10.0.0.0/8', '127.0.0.1']);
    expect(config.jwt.audience).toEqual(['a', 'b']);
    expect(loadRevealConfig({ ...BASE, TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(configError({ ...BASE, RATE_LIMIT_WINDOW: 'often' }).settings).toEqual(['RATE_LIMIT_WINDOW']);
  });

  it('configures the web console: on by default, OpenID sign-in only with both issuer and client id', () => {
    expect(loadRevealConfig(BASE).console).toMatchObject({ enabled: true, oidc: undefined, revealClearSeconds: 60, localSignIn: false });
    const withOidc = loadRevealConfig({ ...BASE, CONSOLE_OIDC_ISSUER: 'https://idp.example.com/', CONSOLE_OIDC_CLIENT_ID: 'tokenvault-console' });
    expect(withOidc.console.oidc).toEqual({ issuer: 'https://idp.example.com/', clientId: 'tokenvault-console', scope: 'openid', resource: undefined });
    expect(configError({ ...BASE, CONSOLE_OIDC_ISSUER: 'https://idp.example.com/' }).settings).toEqual(['CONSOLE_OIDC_CLIENT_ID']);
    expect(configError({ ...BASE, CONSOLE_OIDC_CLIENT_ID: 'tokenvault-console' }).settings).toEqual(['CONSOLE_OIDC_ISSUER']);
    expect(configError({ ...BASE, CONSOLE_REVEAL_CLEAR_SECONDS: '0' }).settings).toEqual(['CONSOLE_REVEAL_CLEAR_SECONDS']);
  });

  it('refuses the local sign-in everywhere but the local stack', () => {
    const error = configError({ ...BASE, CONSOLE_LOCAL_SIGN_IN: 'true' });
    expect(error.settings).toEqual(['CONSOLE_LOCAL_SIGN_IN']);
    expect(error.message).toContain('only in the local stack');
    expect(loadRevealConfig({ ...BASE, CONSOLE_LOCAL_SIGN_IN: 'true' }, { localStack: true }).console.localSignIn).toBe(true);
    expect(loadRevealConfig({ ...BASE, CONSOLE_LOCAL_SIGN_IN: 'false' }).console.localSignIn).toBe(false);
  });

  it('refuses the local sign-in on a listener the network can reach, naming CONSOLE_LOCAL_SIGN_IN and HOST', () => {
    for (const host of ['0.0.0.0', '::', '192.0.2.10', 'tokenvault.internal']) {
      let error: ConfigError | undefined;
      try {
        loadRevealConfig({ ...BASE, HOST: host, CONSOLE_LOCAL_SIGN_IN: 'true' }, { localStack: true });
      } catch (caught) {
        error = caught as ConfigError;
      }
      expect(error, host).toBeInstanceOf(ConfigError);
      expect(error?.settings).toEqual(['CONSOLE_LOCAL_SIGN_IN', 'HOST']);
      expect(error?.message).toContain(`HOST=${host}`);
    }
    for (const host of ['127.0.0.1', '127.0.0.2', '::1', 'localhost']) {
      expect(loadRevealConfig({ ...BASE, HOST: host, CONSOLE_LOCAL_SIGN_IN: 'true' }, { localStack: true }).console.localSignIn, host).toBe(true);
    }
  });
});
