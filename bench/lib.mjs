// Shared helpers of the benchmarks: a server (embedded or DATABASE_URL), timing, statistics.
import pg from 'pg';
import { performance } from 'node:perf_hooks';
import { startEmbeddedServer } from '../dist/embedded/embedded-server.js';

export const QUICK = process.argv.includes('--quick');

/** A server for one benchmark: DATABASE_URL's, or a throwaway embedded PostgreSQL. */
export async function benchServer() {
  if (process.env.DATABASE_URL) {
    const base = process.env.DATABASE_URL;
    return {
      label: 'DATABASE_URL',
      urlFor(db) {
        const u = new URL(base);
        u.pathname = `/${db}`;
        return u.toString();
      },
      url: base,
      async stop() {},
    };
  }
  const server = await startEmbeddedServer();
  return { label: `embedded PostgreSQL ${server.major}`, url: server.url, urlFor: server.urlFor, stop: () => server.stop() };
}

/** A fresh database on the server; returns its URL. */
export async function freshDatabase(server, name) {
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  return server.urlFor(name);
}

export async function time(fn) {
  const start = performance.now();
  await fn();
  return (performance.now() - start) / 1000;
}

export function stats(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1], samples: sorted.length };
}

/** Print one figure line and return it for results.json. */
export function report(name, samples, unit, aim) {
  const s = stats(samples);
  const fmt = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(3));
  process.stdout.write(
    `${name.padEnd(30)} median ${fmt(s.median).padStart(9)} ${unit.padEnd(8)} min ${fmt(s.min).padStart(9)}  max ${fmt(s.max).padStart(9)}  (n=${s.samples})${aim ? `  aim ${aim}` : ''}\n`,
  );
  return { name, unit, aim: aim ?? null, ...s };
}

/** Machine-readable results for bench/run.mjs: one line on stdout. */
export function emit(figures) {
  process.stdout.write(`BENCH-RESULT ${JSON.stringify(figures)}\n`);
}
