#!/usr/bin/env node
// `npm run bench [-- --quick]`: every benchmark, each in its own process on its own server,
// then one table (median, min, max) and bench/results.json with every figure.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
const only = process.argv
  .find((a) => a.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',');

const BENCHES = ['policy-overhead', 'audit', 'audit-100k', 'plan-apply', 'explain', 'verify', 'with-tenant', 'runtime-import'];

function runBench(name) {
  return new Promise((resolve) => {
    const args = [path.join(here, `${name}.mjs`), ...(quick ? ['--quick'] : [])];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let result;
    let buffer = '';
    child.stdout.on('data', (chunk) => {
      buffer += chunk;
      let nl;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.startsWith('BENCH-RESULT ')) result = JSON.parse(line.slice('BENCH-RESULT '.length));
        else process.stdout.write(`  [${name}] ${line}\n`);
      }
    });
    child.on('close', (code) => resolve({ name, code, figures: result ?? [] }));
  });
}

const started = Date.now();
const figures = [];
const failures = [];
for (const name of BENCHES.filter((b) => !only || only.includes(b))) {
  process.stdout.write(`\n== ${name}${quick ? ' (quick)' : ''}\n`);
  const r = await runBench(name);
  if (r.code !== 0) failures.push(`${name} exited ${r.code}`);
  figures.push(...r.figures.map((f) => ({ bench: name, ...f })));
}

const fmt = (v) => (v === null || v === undefined ? '' : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(3));
process.stdout.write(`\n${'figure'.padEnd(30)} ${'median'.padStart(10)} ${'min'.padStart(10)} ${'max'.padStart(10)}  unit      aim\n`);
for (const f of figures) {
  process.stdout.write(
    `${f.name.padEnd(30)} ${fmt(f.median).padStart(10)} ${fmt(f.min).padStart(10)} ${fmt(f.max).padStart(10)}  ${String(f.unit).padEnd(8)}  ${f.aim ?? ''}\n`,
  );
}
const results = {
  generated: new Date().toISOString(),
  quick,
  machine: {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
  },
  seconds: Math.round((Date.now() - started) / 1000),
  figures: Object.fromEntries(
    figures.map((f) => [
      f.name,
      { median: f.median, min: f.min, max: f.max, unit: f.unit, aim: f.aim, samples: f.samples, bench: f.bench, measured: new Date().toISOString() },
    ]),
  ),
  failures,
};
const out = quick ? 'results.quick.json' : 'results.json';
// --only measures some benchmarks: the figures of the others stay as the file had them (each figure
// says when it was measured), and `only` names what this run measured.
if (only && existsSync(path.join(here, out))) {
  const before = JSON.parse(readFileSync(path.join(here, out), 'utf8'));
  results.figures = { ...before.figures, ...results.figures };
  results.only = only;
}
writeFileSync(path.join(here, out), JSON.stringify(results, null, 2) + '\n');
process.stdout.write(`\nwrote bench/${out} (${results.seconds} s)${failures.length ? `; failed: ${failures.join(', ')}` : ''}\n`);
process.exitCode = failures.length ? 1 : 0;
