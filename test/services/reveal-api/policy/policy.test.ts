import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../../lib/errors.js';
import { DEFAULT_POLICY_FILE } from '../../../../services/reveal-api/config.js';
import { Policy } from '../../../../services/reveal-api/policy/policy.js';

describe('authorization policy', () => {
  it('ships a default policy with the five documented roles', async () => {
    const policy = await Policy.load(DEFAULT_POLICY_FILE);
    expect(policy.roles.sort()).toEqual(['analyst', 'auditor', 'investigator', 'privacy-officer', 'support']);
  });

  it('combines roles with the most permissive grant per field', () => {
    const policy = Policy.parse({
      roles: {
        a: { reveal: { ip: 'masked', device_id: 'plain' } },
        b: { reveal: { ip: 'plain', device_id: 'masked' }, tokenize: ['ip'] },
        c: { audit: true, erase: ['device_id'] },
      },
    });
    const permissions = policy.permissionsFor(['a', 'b', 'c', 'unknown', '__proto__']);
    expect(permissions.reveal).toEqual({ ip: 'plain', device_id: 'plain' });
    expect([...permissions.tokenize]).toEqual(['ip']);
    expect([...permissions.erase]).toEqual(['device_id']);
    expect(permissions.audit).toBe(true);
    expect(policy.permissionsFor([])).toEqual({ reveal: {}, tokenize: new Set(), erase: new Set(), audit: false });
  });

  it('rejects unknown fields, redactions and permissions with a ConfigError naming POLICY_FILE', () => {
    for (const document of [
      { roles: { a: { reveal: { email: 'plain' } } } },
      { roles: { a: { reveal: { ip: 'partially' } } } },
      { roles: { a: { delete: true } } },
      { role: {} },
    ]) {
      expect(() => Policy.parse(document)).toThrow(ConfigError);
    }
  });

  it('reports an unreadable or non-JSON policy file', async () => {
    await expect(Policy.load('/nonexistent/policy.json')).rejects.toMatchObject({ settings: ['POLICY_FILE'] });
  });
});
