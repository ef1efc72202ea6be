import { describe, expect, it } from 'vitest';
import { TenantContextError } from '../../../src/tenant/tenant-context-error.js';
import { assertTenantShape, validateTenantId } from '../../../src/tenant/validate-tenant.js';

function refusal(fn: () => unknown): TenantContextError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TenantContextError);
    return error as TenantContextError;
  }
  throw new Error('expected a TenantContextError, nothing was thrown');
}

describe('validateTenantId', () => {
  it('refuses null, undefined and the empty string for every type', () => {
    for (const type of ['uuid', 'bigint', 'integer', 'text'] as const) {
      for (const value of [null, undefined, '']) {
        const error = refusal(() => validateTenantId(value, type));
        expect(error.code).toBe('invalid-tenant');
        expect(error.message).toContain(type);
      }
    }
  });

  it('uuid: takes the hyphenated form in any case and returns it in lower case', () => {
    expect(validateTenantId('00000000-0000-4000-8000-00000000000A', 'uuid')).toBe('00000000-0000-4000-8000-00000000000a');
    expect(validateTenantId('f47ac10b-58cc-4372-a567-0e02b2c3d479')).toBe('f47ac10b-58cc-4372-a567-0e02b2c3d479');
  });

  it('uuid: refuses malformed values, other spellings and non-strings', () => {
    for (const value of [
      'not-a-uuid',
      '00000000-0000-4000-8000-00000000000',
      '00000000-0000-4000-8000-00000000000g',
      '{00000000-0000-4000-8000-00000000000a}',
      '000000000000400080000000000000a0',
      ' 00000000-0000-4000-8000-00000000000a',
      "00000000-0000-4000-8000-00000000000a'; DROP TABLE t; --",
      42,
      42n,
      {},
      ['00000000-0000-4000-8000-00000000000a'],
      true,
    ]) {
      expect(refusal(() => validateTenantId(value, 'uuid')).code).toBe('invalid-tenant');
    }
  });

  it('bigint: numbers, bigints and decimal strings, range-checked, in plain decimal form', () => {
    expect(validateTenantId(42, 'bigint')).toBe('42');
    expect(validateTenantId(-7n, 'bigint')).toBe('-7');
    expect(validateTenantId('0042', 'bigint')).toBe('42');
    expect(validateTenantId('9223372036854775807', 'bigint')).toBe('9223372036854775807');
    expect(validateTenantId(-(2n ** 63n), 'bigint')).toBe('-9223372036854775808');
    expect(validateTenantId(-0, 'bigint')).toBe('0');
    for (const value of [
      '9223372036854775808',
      2n ** 63n,
      -(2n ** 63n) - 1n,
      1.5,
      Number.MAX_SAFE_INTEGER + 2,
      NaN,
      Infinity,
      '1e3',
      '+1',
      ' 1',
      '1.0',
      '0x10',
      '١٢',
      true,
    ]) {
      expect(refusal(() => validateTenantId(value, 'bigint')).code).toBe('invalid-tenant');
    }
  });

  it('bigint: a number beyond 2^53 is refused with a hint to pass a bigint or a string', () => {
    expect(refusal(() => validateTenantId(2 ** 60, 'bigint')).message).toMatch(/bigint or a decimal string/);
  });

  it('integer: the range of a PostgreSQL integer', () => {
    expect(validateTenantId(2147483647, 'integer')).toBe('2147483647');
    expect(validateTenantId('-2147483648', 'integer')).toBe('-2147483648');
    for (const value of [2147483648, '-2147483649', 2n ** 40n]) {
      expect(refusal(() => validateTenantId(value, 'integer')).message).toMatch(/out of the range of integer/);
    }
  });

  it('text: any non-empty string without NUL, returned as given', () => {
    expect(validateTenantId("o'brien \\ acme", 'text')).toBe("o'brien \\ acme");
    expect(validateTenantId(' ', 'text')).toBe(' ');
    for (const value of ['a\0b', 42, 42n, null]) {
      expect(refusal(() => validateTenantId(value, 'text')).code).toBe('invalid-tenant');
    }
  });

  it('refuses an unknown tenant type as an options error', () => {
    expect(refusal(() => validateTenantId('1', 'int' as never)).code).toBe('invalid-options');
  });

  it('keeps long values out of the message', () => {
    const error = refusal(() => validateTenantId('x'.repeat(500), 'uuid'));
    expect(error.message.length).toBeLessThan(200);
  });
});

describe('assertTenantShape', () => {
  it('takes strings, finite numbers and bigints', () => {
    for (const value of ['a', 1, 0, 1n]) expect(() => assertTenantShape(value)).not.toThrow();
  });

  it('refuses what no tenant type takes', () => {
    for (const value of [null, undefined, '', NaN, Infinity, {}, [], true]) {
      expect(refusal(() => assertTenantShape(value)).code).toBe('invalid-tenant');
    }
  });
});
