import { UsageError } from '../errors.js';
import { dbmateTool } from './dbmate.js';
import { drizzleTool } from './drizzle.js';
import { flywayTool } from './flyway.js';
import { kyselyTool } from './kysely.js';
import { nodePgMigrateTool } from './node-pg-migrate.js';
import { prismaTool } from './prisma.js';
import type { MigrationTool } from './render.js';
import { sqlTool } from './sql.js';

/** Every tool `rlsctl plan --migration` writes for, by name (docs/migrations.md). */
export const MIGRATION_TOOLS: readonly MigrationTool[] = [sqlTool, dbmateTool, nodePgMigrateTool, kyselyTool, drizzleTool, prismaTool, flywayTool];

export function migrationTool(name: string): MigrationTool {
  const tool = MIGRATION_TOOLS.find((t) => t.name === name);
  if (!tool) {
    throw new UsageError(`unknown migration tool ${JSON.stringify(name)}`, { hint: `one of: ${MIGRATION_TOOLS.map((t) => t.name).join(', ')}` });
  }
  return tool;
}
