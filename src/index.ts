/** The programmatic API: `import { ... } from 'rlsctl'`. */
export { loadPolicy, parsePolicy, readPolicySources } from './policy/load-policy.js';
export { validatePolicy, type PolicySource, type ValidationResult } from './policy/validate-policy.js';
export type { PolicyModel, TableDecl, TenantTable, SharedTable, ExemptTable, TenantType, Command } from './policy/model.js';
export { compileScript, compileStatements } from './compile/render-sql.js';
export { desiredState, type DesiredState, type DesiredTable, type PolicySpec, type IndexSpec } from './compile/desired-state.js';
export type { Statement, Hazard } from './compile/statement.js';
export { RlsctlError, UsageError, PolicyInvalid, DatabaseError, CheckFailed } from './errors.js';
export type { Finding, RuleMeta, Severity } from './report/finding.js';
export { formatFindingsJson } from './report/format-json.js';
export { formatSarif } from './report/format-sarif.js';
export { openDatabase, redactUrl, redactSecrets, type Database } from './db/connection.js';
export { startEmbeddedServer, type EmbeddedServer } from './embedded/embedded-server.js';
export { resolveFacts, factsFromModel, type TenantFacts } from './facts/resolve-facts.js';
export { runAudit, type AuditOptions, type AuditResult } from './audit/run-audit.js';
export { AUDIT_RULES } from './audit/registry.js';
export { runExplain, type ExplainQuery, type ExplainOptions, type ExplainResult, type ExplainFinding } from './explain/run-explain.js';
export { readQueryFile, readQueryFiles, type QuerySource } from './explain/read-query-file.js';
// The runtime, also importable alone as 'rlsctl/runtime' (src/runtime.ts).
export {
  withTenant,
  withCurrentTenant,
  withTenantQuery,
  tenantContext,
  TenantContextError,
  validateTenantId,
  type KyselyLike,
  type KyselyTransactionOf,
  type TenantClient,
  type TenantContext,
  type TenantContextErrorCode,
  type TenantId,
  type TenantQuery,
  type WithTenantOptions,
} from './runtime.js';
export { diffModels } from './diff/diff-models.js';
export type { PolicyChange, ChangeClass, ChangeKind, ChangeObject, ChangeSummary } from './diff/policy-change.js';
export { runVerify, type VerifyOptions, type VerifyResult, type VerifyProgress } from './verify/run-verify.js';
export { VERIFY_RULES } from './verify/registry.js';
export { introspectCatalog, type IntrospectOptions } from './catalog/introspect-catalog.js';
export type {
  CatalogModel,
  CatalogTable,
  CatalogColumn,
  CatalogPolicy,
  CatalogIndex,
  IndexKey,
  CatalogRole,
  CatalogGrant,
  CatalogForeignKey,
  Relkind,
} from './catalog/catalog-model.js';
export { buildPlan, type BuildPlanOptions } from './plan/build-plan.js';
export { isConverged, planProblems, type Plan, type PlanDrift, type ViaWithoutKey } from './plan/plan.js';
export { formatPlanText, formatPlanJson, formatPlanMarkdown, summarizePlan } from './plan/format-plan.js';
export { applyPlan, type ApplyOptions, type ApplyResult, type ApplyProgress, type IndexBuildProgress } from './apply/apply-plan.js';
export { convergeDatabase } from './apply/converge.js';
export { writeMigration, type WriteMigrationOptions, type WrittenMigration } from './migration/write-migration.js';
export { MIGRATION_TOOLS } from './migration/registry.js';
export { draftPolicyFile, type Draft, type DraftOptions } from './init/draft-policy-file.js';
export { readInitFacts, type InitFacts } from './init/read-init-facts.js';

import { compileScript, type CompileOptions } from './compile/render-sql.js';
import type { PolicyModel } from './policy/model.js';
export type { CompileOptions } from './compile/render-sql.js';
/** The compiled, idempotent SQL script for a policy model (what `rlsctl compile` prints; `{ transactional: true }` for `--transactional`). */
export function compilePolicy(model: PolicyModel, options: CompileOptions = {}): string {
  return compileScript(model, options);
}
