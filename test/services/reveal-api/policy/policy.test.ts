import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../../lib/errors.js';
import { DEFAULT_POLICY_FILE } from '../../../../services/reveal-api/config.js';
import { Policy } from '../../../../services/reveal-api/policy/policy.js';

describe('authorization policy', () => {
  it('ships a default policy with the six documented roles', async () => {
    const policy = await Policy.load(DEFAULT_POLICY_FILE);
    expect(policy.roles.sort()).toEqual(['analyst', 'approver', 'auditor', 'investigator', 'privacy-officer', 'support']);
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
    expect(policy.permissionsFor([])).toEqual({
      reveal: {},
      tokenize: new Set(),
      erase: new Set(),
      audit: false,
      approve: false,
      budget: {},
      breakGlassPerDay: undefined,
      person: { access: {}, erase: false },
    });
  });

  it('combines person-request grants: the most permissive access per field, erase from any role', () => {
    const policy = Policy.parse({
      roles: {
        assistant: { person: { access: { ip: 'masked' } } },
        officer: { person: { access: { ip: 'plain', device_id: 'masked' }, erase: true } },
      },
    });
    expect(policy.permissionsFor(['assistant']).person).toEqual({ access: { ip: 'masked' }, erase: false });
    expect(policy.permissionsFor(['assistant', 'officer']).person).toEqual({ access: { ip: 'plain', device_id: 'masked' }, erase: true });
    expect(() => Policy.parse({ roles: { x: { person: { access: { ip: 'clear' } } } } })).toThrow(/POLICY_FILE/);
    expect(() => Policy.parse({ roles: { x: { person: { delete: true } } } })).toThrow(/POLICY_FILE/);
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

  it('combines budgets to the most permissive: a reveal role without a window makes it unlimited', () => {
    const policy = Policy.parse({
      roles: {
        small: { reveal: { ip: 'plain' }, budget: { per_hour: 10, per_day: 50 } },
        large: { reveal: { ip: 'masked' }, budget: { per_hour: 100 } },
        glass: { reveal: { ip: 'plain' }, budget: { per_day: 5 }, break_glass: { per_day: 3 } },
        auditor: { audit: true },
      },
    });
    expect(policy.permissionsFor(['small']).budget).toEqual({ hour: 10, day: 50 });
    expect(policy.permissionsFor(['small', 'large']).budget).toEqual({ hour: 100 });
    expect(policy.permissionsFor(['small', 'auditor']).budget).toEqual({ hour: 10, day: 50 });
    expect(policy.permissionsFor(['glass']).breakGlassPerDay).toBe(3);
    expect(policy.permissionsFor(['small']).breakGlassPerDay).toBeUndefined();
  });

  it('requires approval only when every reveal role of the caller asks for it', () => {
    const policy = Policy.parse({
      roles: {
        fields: { reveal: { ip: 'plain', device_id: 'plain' }, approval: { fields: ['device_id'] } },
        bulk: { reveal: { ip: 'plain' }, approval: { above: 5 } },
        free: { reveal: { ip: 'plain' } },
        approver: { approve: true },
      },
    });
    const shape = (fields: ('ip' | 'device_id')[], values: number) => ({ fields: new Set(fields), values });
    expect(policy.needsApproval(['fields'], shape(['ip'], 50))).toBe(false);
    expect(policy.needsApproval(['fields'], shape(['device_id'], 1))).toBe(true);
    expect(policy.needsApproval(['bulk'], shape(['ip'], 5))).toBe(false);
    expect(policy.needsApproval(['bulk'], shape(['ip'], 6))).toBe(true);
    expect(policy.needsApproval(['fields', 'bulk'], shape(['device_id'], 6))).toBe(true);
    expect(policy.needsApproval(['fields', 'bulk'], shape(['device_id'], 2))).toBe(false);
    expect(policy.needsApproval(['bulk', 'free'], shape(['ip'], 60))).toBe(false);
    expect(policy.needsApproval(['approver'], shape(['ip'], 60))).toBe(false);
  });

  it('names the bad entry of a governance rule at start-up', () => {
    const problems = (document: unknown) => {
      try {
        Policy.parse(document, 'policy.json');
      } catch (error) {
        return (error as Error).message;
      }
      return 'accepted';
    };
    expect(problems({ roles: { inv: { reveal: { ip: 'plain' }, budget: { per_week: 5 } } } })).toMatch(/roles\.inv\.budget/);
    expect(problems({ roles: { inv: { reveal: { ip: 'plain' }, budget: { per_hour: -1 } } } })).toMatch(/roles\.inv\.budget\.per_hour/);
    expect(problems({ roles: { inv: { reveal: { ip: 'plain' }, approval: {} } } })).toMatch(/roles\.inv\.approval/);
    expect(problems({ roles: { inv: { reveal: { ip: 'plain' }, approval: { above: 3 } } } })).toMatch(/no role has approve: true/);
    expect(problems({ roles: { aud: { audit: true, budget: { per_hour: 3 } } } })).toMatch(/roles\.aud\.budget: budget only applies to a role that grants reveal/);
    expect(problems({ roles: {}, approval: { approvers_required: 3 } })).toMatch(/approval\.approvers_required/);
    expect(problems({ roles: {}, extra: true })).toMatch(/extra/);
  });
});
