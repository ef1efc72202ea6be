import type { AuditRule } from './rule.js';
import { rls001 } from './rules/rls001-rls-disabled.js';
import { rls002 } from './rules/rls002-rls-not-forced.js';
import { rls003 } from './rules/rls003-no-policy.js';
import { rls004 } from './rules/rls004-policy-without-rls.js';
import { rls005 } from './rules/rls005-undeclared-table.js';
import { rls006 } from './rules/rls006-policy-drift.js';
import { rls007 } from './rules/rls007-exempt-table.js';
import { rls010 } from './rules/rls010-app-role-bypasses-rls.js';
import { rls011 } from './rules/rls011-undeclared-bypass-role.js';
import { rls012 } from './rules/rls012-row-security-off.js';
import { rls020 } from './rules/rls020-setting-not-missing-ok.js';
import { rls021 } from './rules/rls021-empty-setting-cast.js';
import { rls022 } from './rules/rls022-fail-open-context.js';
import { rls023 } from './rules/rls023-persistent-tenant-default.js';
import { rls024 } from './rules/rls024-user-editable-claim.js';
import { rls030 } from './rules/rls030-permissive-always-true.js';
import { rls031 } from './rules/rls031-multiple-permissive.js';
import { rls032 } from './rules/rls032-write-not-tenant-checked.js';
import { rls033 } from './rules/rls033-via-parent-key-not-unique.js';
import { rls034 } from './rules/rls034-login-only-read.js';
import { rls035 } from './rules/rls035-recursive-policy.js';
import { rls040 } from './rules/rls040-missing-tenant-index.js';
import { rls041 } from './rules/rls041-per-row-setting-call.js';
import { rls042 } from './rules/rls042-non-sargable-tenant-predicate.js';
import { rls043 } from './rules/rls043-invalid-index.js';
import { rls044 } from './rules/rls044-missing-membership-index.js';
import { rls050 } from './rules/rls050-view-bypasses-rls.js';
import { rls051 } from './rules/rls051-unprotectable-relation.js';
import { rls052 } from './rules/rls052-security-definer-function.js';
import { rls053 } from './rules/rls053-partition-without-rls.js';
import { rls060 } from './rules/rls060-cross-tenant-foreign-key.js';
import { rls061 } from './rules/rls061-global-unique-constraint.js';
import { rls062 } from './rules/rls062-nullable-tenant-column.js';
import { rls063 } from './rules/rls063-rls-bypassing-grant.js';
import { rls064 } from './rules/rls064-public-grant.js';
import { rls070 } from './rules/rls070-vulnerable-server-version.js';

/** Every audit rule, in code order. A code is never reused, even for a rule that is removed. */
export const AUDIT_RULES: readonly AuditRule[] = [
  rls001,
  rls002,
  rls003,
  rls004,
  rls005,
  rls006,
  rls007,
  rls010,
  rls011,
  rls012,
  rls020,
  rls021,
  rls022,
  rls023,
  rls024,
  rls030,
  rls031,
  rls032,
  rls033,
  rls034,
  rls035,
  rls040,
  rls041,
  rls042,
  rls043,
  rls044,
  rls050,
  rls051,
  rls052,
  rls053,
  rls060,
  rls061,
  rls062,
  rls063,
  rls064,
  rls070,
];

export function auditRule(code: string): AuditRule | undefined {
  return AUDIT_RULES.find((r) => r.code === code);
}
