// Paths from the environment (LOOKALIKE_BIN, LOOKALIKE_DATASET: relative to the repo root; CHROMIUM),
// and the checks run once before any test: each missing piece stops the run with one line.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const webDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const repoRoot = resolve(webDir, '..');
export const binary = resolve(repoRoot, process.env.LOOKALIKE_BIN ?? 'build/src/lookalike');
export const dataset = resolve(repoRoot, process.env.LOOKALIKE_DATASET ?? '../shared/datasets/fashion6-dev');
export const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const distDir = join(webDir, 'dist');
export const outDir = join(webDir, 'test-output');
export const datasetAbsent = `the dataset ${dataset} is absent, so there is no catalog to test against`;

// Thrown without a stack, so that Playwright prints the message alone.
const fail = (msg: string): never => {
  throw Object.assign(new Error(`e2e: ${msg}`), { stack: `e2e: ${msg}` });
};

export default function globalSetup() {
  if (!existsSync(dataset)) {
    if (process.env.CI === 'true') fail(`the dataset ${dataset} is absent, and CI=true requires it.`);
    console.log(`e2e: SKIPPED: ${datasetAbsent}.`);
    return;
  }
  if (!existsSync(binary)) fail(`the server binary ${binary} is missing: build it first (scripts/build.sh).`);
  if (!existsSync(join(distDir, 'index.html'))) fail(`${distDir}/index.html is missing: run scripts/build-web.sh first.`);
  if (!existsSync(chromiumPath)) fail(`${chromiumPath} is missing: apt-get install -y chromium`);
  const v = spawnSync(chromiumPath, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  if (v.status !== 0) fail(`${chromiumPath} --version failed: ${v.stderr || v.error}`);
  console.log(`e2e: browser: ${v.stdout.trim()}`);
  // The previous run's pictures and logs (the fixtures append to the logs: a retry starts a new worker).
  mkdirSync(outDir, { recursive: true });
  for (const f of readdirSync(outDir)) if (/\.png$|^(server|server-training|import)\.log$/.test(f)) rmSync(join(outDir, f));
}
