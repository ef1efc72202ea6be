#!/usr/bin/env node
// What importing `rlsctl/runtime` adds to an application that already imports
// `pg`: start-up time and resident memory, against importing `pg` alone.
//
//   npm run build && node bench/runtime-import.mjs [--rounds 21]
//
// Needs no database. Each round starts fresh Node processes one after another,
// in an order that alternates between rounds: one imports `pg` alone, one
// imports `pg` then `rlsctl/runtime`, one imports `pg` then `rlsctl` (the main
// entry, for contrast). A child times each import with performance.now() and
// reads process.memoryUsage().rss before the first import and after each one;
// it also reads process.cpuUsage(), whose figure moves less with the machine's load.
// The overhead of an entry is measured in the child that imported it: its
// import time and RSS growth after `pg` was loaded, side by side with `pg`'s
// own import in the same child and in the `pg`-alone child of the same round.
// Differences between separate processes would mostly measure the noise of a
// shared machine; figures are medians over the rounds.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { report, emit, QUICK } from './lib.mjs';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const roundsAt = args.indexOf('--rounds');
const ROUNDS = roundsAt >= 0 ? Number(args[roundsAt + 1]) : QUICK ? 7 : 21;

// Imported by package name from the repository root, as an application would (the exports map applies).
const VARIANTS = {
  pg: ['pg'],
  runtime: ['pg', 'rlsctl/runtime'],
  main: ['pg', 'rlsctl'],
};

async function sample(specifiers) {
  const script = `
const { performance } = await import('node:perf_hooks');
const steps = [];
let rss = process.memoryUsage().rss;
for (const s of ${JSON.stringify(specifiers)}) {
  const start = performance.now();
  const cpu = process.cpuUsage();
  await import(s);
  const used = process.cpuUsage(cpu);
  const now = process.memoryUsage().rss;
  steps.push({ ms: performance.now() - start, cpuMs: (used.user + used.system) / 1000, mib: (now - rss) / 2 ** 20 });
  rss = now;
}
console.log(JSON.stringify(steps));`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: root });
  return JSON.parse(stdout);
}

const figures = { pgMs: [], pgMib: [], runtimeMs: [], runtimeCpuMs: [], runtimeMib: [], mainMs: [], mainMib: [] };
const names = Object.keys(VARIANTS);
await sample(VARIANTS.main); // warm the file cache
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 ? [...names].reverse() : names;
  const got = {};
  for (const name of order) got[name] = await sample(VARIANTS[name]);
  figures.pgMs.push(got.pg[0].ms);
  figures.pgMib.push(got.pg[0].mib);
  figures.runtimeMs.push(got.runtime[1].ms);
  figures.runtimeCpuMs.push(got.runtime[1].cpuMs);
  figures.runtimeMib.push(got.runtime[1].mib);
  figures.mainMs.push(got.main[1].ms);
  figures.mainMib.push(got.main[1].mib);
}

emit([
  report('pg_import_ms', figures.pgMs, 'ms', 'report (the baseline)'),
  report('pg_import_rss_mib', figures.pgMib, 'MiB', 'report (the baseline)'),
  report('runtime_import_overhead_ms', figures.runtimeMs, 'ms', '<= 15'),
  report('runtime_import_overhead_cpu_ms', figures.runtimeCpuMs, 'ms', 'report (CPU time: less sensitive to a busy machine)'),
  report('runtime_import_rss_overhead_mib', figures.runtimeMib, 'MiB', '<= 5'),
  report('main_import_overhead_ms', figures.mainMs, 'ms', 'report'),
  report('main_import_rss_overhead_mib', figures.mainMib, 'MiB', 'report'),
]);
