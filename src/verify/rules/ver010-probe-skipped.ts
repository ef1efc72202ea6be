import { defineVerifyRule, detailsMessage } from '../rule.js';

/** docs/rules/VER010.md */
export const ver010 = defineVerifyRule({
  code: 'VER010',
  name: 'probe-skipped',
  severity: 'info',
  title: 'A probe could not be run or could not decide',
  description:
    'verify could not make a probe row (required columns without defaults whose values it cannot guess, a partition bound it cannot satisfy), or a probe failed for a reason other than the tenant boundary. That part of the relation is unproven, not proven safe.',
  remediation: 'Give verify rows to work with (seed two tenants in the test database), or name the tenants with --tenant; the message says what was missing.',
  leak: false,
  message: (e, label) => `${label}${e.role ? `, as ${e.role}` : ''}: ${detailsMessage(e)}`,
  help: () => undefined,
});
