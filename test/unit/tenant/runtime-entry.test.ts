import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../helpers/cli.js';

/**
 * `rlsctl/runtime` (src/runtime.ts, issue 13 item 5): importing it loads only
 * its own files. Checked twice: on the built package, by a child process that
 * records every module Node resolves while it imports `rlsctl/runtime` (by its
 * package name, through the exports map); and on the sources, by walking the
 * import graph of src/runtime.ts, type imports included, which must stay in
 * src/tenant/ apart from pg and kysely (types, and kysely's dynamic import on
 * the Kysely path). `npm test` builds dist/ first.
 */

const run = promisify(execFile);

// Runs in Node's hooks thread: reports every resolved URL to the main thread.
const HOOKS = `
let port;
export async function initialize(data) {
  port = data.port;
  port.on('message', (m) => { if (m === 'flush') port.postMessage('flushed'); });
  port.unref();
}
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  port.postMessage(result.url);
  return result;
}`;

/** The URLs resolved while importing `specifiers` one after another, in a fresh Node process in the repository. */
async function resolvedWhileImporting(...specifiers: string[]): Promise<{ urls: string[]; keys: string[][]; same: boolean }> {
  const script = `
import { register } from 'node:module';
import { MessageChannel } from 'node:worker_threads';
const { port1, port2 } = new MessageChannel();
const urls = [];
let flushed;
const done = new Promise((r) => (flushed = r));
port1.on('message', (m) => (m === 'flushed' ? flushed() : urls.push(m)));
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(HOOKS)}), { parentURL: import.meta.url, data: { port: port2 }, transferList: [port2] });
const modules = [];
for (const specifier of ${JSON.stringify(specifiers)}) modules.push(await import(specifier));
port1.postMessage('flush');
await done;
port1.close();
const same = modules.length === 2 && ['withTenant', 'withCurrentTenant', 'tenantContext', 'TenantContextError', 'validateTenantId'].every((k) => modules[0][k] === modules[1][k] && typeof modules[0][k] !== 'undefined');
console.log(JSON.stringify({ urls, keys: modules.map((m) => Object.keys(m).sort()), same }));
`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, maxBuffer: 16 << 20 });
  return JSON.parse(stdout) as { urls: string[]; keys: string[][]; same: boolean };
}

const FORBIDDEN =
  /node_modules\/(libpg-query|yaml|chalk|commander|kysely|pg)\/|\/dist\/(audit|verify|explain|policy|compile|cli|diff|plan|apply|catalog|facts|report|db|init|embedded)\/|\/dist\/errors\.js$/;

describe('rlsctl/runtime', () => {
  it('exports the runtime API and nothing else', async () => {
    const { keys } = await resolvedWhileImporting('rlsctl/runtime');
    expect(keys).toEqual([['TenantContextError', 'tenantContext', 'validateTenantId', 'withCurrentTenant', 'withTenant', 'withTenantQuery']]);
  });

  it('loads only dist/runtime.js and dist/tenant/ (no package at all: pg and kysely are types or loaded on use)', async () => {
    const { urls } = await resolvedWhileImporting('rlsctl/runtime');
    const dist = new URL('dist/', `file://${ROOT}/`).href;
    expect(urls).toContain(`${dist}runtime.js`);
    expect(urls.filter((u) => FORBIDDEN.test(u))).toEqual([]);
    const outside = urls.filter((u) => !(u === `${dist}runtime.js` || u.startsWith(`${dist}tenant/`) || u.startsWith('node:')));
    expect(outside).toEqual([]);
    expect([...new Set(urls.filter((u) => u.startsWith('node:')))]).toEqual(['node:async_hooks']);
  });

  it('the recording does see what the main entry loads (so the check above can fail), and the main entry does not load kysely either', async () => {
    const { urls } = await resolvedWhileImporting('rlsctl');
    expect(urls.filter((u) => FORBIDDEN.test(u)).length).toBeGreaterThan(0);
    expect(urls.some((u) => u.includes('node_modules/yaml/'))).toBe(true);
    // kysely is an optional peer: not even the main entry loads it until a Kysely instance is passed.
    expect(urls.filter((u) => u.includes('node_modules/kysely/'))).toEqual([]);
  });

  it("the main entry keeps exporting the runtime: import { withTenant } from 'rlsctl' is the same function", async () => {
    const { same, keys } = await resolvedWhileImporting('rlsctl', 'rlsctl/runtime');
    expect(same).toBe(true);
    expect(keys[0]).toEqual(expect.arrayContaining(keys[1]));
  });

  it('the source import graph of src/runtime.ts stays inside src/tenant/ (type imports included), apart from pg and kysely', () => {
    const seen = new Set<string>();
    const packages = new Set<string>();
    const queue = [path.join(ROOT, 'src/runtime.ts')];
    while (queue.length > 0) {
      const file = queue.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
      for (const { fileName } of importedFiles) {
        if (!fileName.startsWith('.')) {
          packages.add(fileName);
          continue;
        }
        const target = path.resolve(path.dirname(file), fileName.replace(/\.js$/, '.ts'));
        expect(existsSync(target), `${path.relative(ROOT, file)} imports ${fileName}`).toBe(true);
        queue.push(target);
      }
    }
    const files = [...seen].map((f) => path.relative(ROOT, f)).sort();
    expect(files.filter((f) => f !== 'src/runtime.ts' && !f.startsWith('src/tenant/'))).toEqual([]);
    expect(files).toContain('src/tenant/with-tenant.ts');
    expect([...packages].sort()).toEqual(['kysely', 'node:async_hooks', 'pg']);
  });

  it('package.json: the ./runtime export, sideEffects false, kysely an optional peer (exact in devDependencies), not a dependency', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as Record<string, Record<string, unknown>>;
    expect(pkg.exports['./runtime']).toEqual({ types: './dist/runtime.d.ts', import: './dist/runtime.js' });
    expect(pkg.sideEffects).toBe(false);
    expect(pkg.dependencies.kysely).toBeUndefined();
    expect(pkg.peerDependencies.kysely).toBeDefined();
    expect(pkg.peerDependenciesMeta.kysely).toEqual({ optional: true });
    expect(pkg.devDependencies.kysely).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
