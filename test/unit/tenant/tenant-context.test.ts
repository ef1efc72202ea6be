import { describe, expect, it } from 'vitest';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { tenantContext } from '../../../src/tenant/tenant-context.js';
import { TenantContextError } from '../../../src/tenant/tenant-context-error.js';

describe('tenantContext', () => {
  it('has no tenant outside run, and require() says so', () => {
    expect(tenantContext.current()).toBeUndefined();
    expect(() => tenantContext.require()).toThrow(TenantContextError);
    try {
      tenantContext.require();
    } catch (error) {
      expect((error as TenantContextError).code).toBe('no-tenant-context');
    }
  });

  it('carries the tenant through awaits, and returns what the function returns', async () => {
    const seen = await tenantContext.run('t1', async () => {
      const before = tenantContext.require();
      await nextTurn();
      await new Promise((resolve) => setTimeout(resolve, 1));
      return [before, tenantContext.current()];
    });
    expect(seen).toEqual(['t1', 't1']);
    expect(tenantContext.current()).toBeUndefined();
  });

  it('keeps concurrent runs apart', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const runs = ['a', 'b', 'c', 'd'].map((t) =>
      tenantContext.run(t, async () => {
        await gate;
        return tenantContext.require();
      }),
    );
    release();
    expect(await Promise.all(runs)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('refuses a nested run for another tenant, and allows the same tenant', () => {
    expect(tenantContext.run(7, () => tenantContext.run('7', () => tenantContext.current()))).toBe('7');
    let code: string | undefined;
    tenantContext.run('a', () => {
      try {
        tenantContext.run('b', () => undefined);
      } catch (error) {
        code = (error as TenantContextError).code;
      }
      expect(tenantContext.current()).toBe('a');
    });
    expect(code).toBe('tenant-mismatch');
  });

  it('refuses to enter a context without a tenant, and does not run the function', () => {
    let ran = false;
    for (const value of [null, undefined, '']) {
      expect(() =>
        tenantContext.run(value as never, () => {
          ran = true;
        }),
      ).toThrow(TenantContextError);
    }
    expect(ran).toBe(false);
  });
});
