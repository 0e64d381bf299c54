// The fixtures and helpers every spec uses: a catalog served by the real C++ server (one per
// worker: imported once, stopped with SIGTERM at the end), a shop on another origin for the
// widget, and a page that records the search options it sends and fails its test on page errors.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test as base, expect, type APIRequestContext, type Page, type Request } from '@playwright/test';
import { binary, dataset, datasetAbsent, distDir, outDir } from './global-setup';

export { expect };
export const CATEGORIES = ['coat', 'dress', 'hood', 'jumper', 'shirts', 'sweater'];
// Enough per category that "auto" (search inside one category) can fill 12 cards.
export const PER_CATEGORY = 16;
// Not in the imported subset (the first 16 of each folder), and confidently classified.
export const QUERY_PHOTO = join(dataset, 'shirts', '37.jpg');
export const SECOND_PHOTO = join(dataset, 'hood', '37.jpg');
const ADMIN_TOKEN = 'e2e-admin-token-0123456789';
export const ADMIN = { authorization: `Bearer ${ADMIN_TOKEN}` };

declare global { interface Window { __searchOptions: (FormDataEntryValue | null)[] } }
// `lookalike` is the Lookalike server the shop's page takes widget.js from.
export type Shop = { origin: string; lookalike: string };
// copiedPhoto: a catalog photo the copy test lists a second time (the subset's first shirt).
export type Server = { base: string; work: string; dataDir: string; copiedPhoto: string };

const byNumber = (a: string, b: string) => parseInt(a, 10) - parseInt(b, 10) || a.localeCompare(b);

/** Starts `lookalike serve` on `data` and waits for /readyz. */
export async function startServer({ work, data, shop, extraArgs = [], logName = 'server.log' }:
  { work: string; data: string; shop: Shop; extraArgs?: string[]; logName?: string }) {
  const log = createWriteStream(join(outDir, logName), { flags: 'a' });
  const server = spawn(binary, ['--data', data, 'serve', '--host', '127.0.0.1', '--port', '0', '--web-root', distDir,
    '--cors-origin', shop.origin, '--admin-token-file', join(work, 'admin-token'), ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
  // Not left behind should the worker end without tearing down its fixtures.
  const kill = () => server.kill('SIGTERM');
  process.on('exit', kill);
  server.on('exit', () => process.off('exit', kill));
  server.stderr.pipe(log);
  // (Once it has listened, the later calls of reject do nothing.)
  const base = await new Promise<string>((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (chunk) => {
      log.write(chunk);
      const m = (out += chunk).match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) resolve(m[1]!);
    });
    server.on('exit', (code) => reject(new Error(`the server exited (${code}) before listening:\n${out}`)));
    setTimeout(() => reject(new Error(`the server printed no address in 60 s:\n${out}`)), 60_000).unref();
  });
  await expect.poll(() => fetch(`${base}/readyz`).then((r) => r.status, () => 0), { message: '/readyz', timeout: 60_000 }).toBe(200);
  return { base, process: server };
}

export async function stopServer(server: ChildProcess) {
  if (server.exitCode === null && server.signalCode === null) await Promise.all([once(server, 'exit'), server.kill('SIGTERM')]);
}

// Chromium does not report the body of a multipart upload to the test, so the page's fetch is
// wrapped (in the test only) to record the `options` field of every POST /api/v1/search.
function recordSearchOptions() {
  const original = window.fetch.bind(window);
  window.__searchOptions = [];
  window.fetch = (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (url.endsWith('/api/v1/search') && init?.body instanceof FormData) window.__searchOptions.push(init.body.get('options'));
    return original(input, init);
  };
}

export const test = base.extend<{ skipWithoutDataset: void }, { shop: Shop; server: Server }>({
  // Set up before the fixtures a test asks for: without the dataset (and CI unset, see
  // global-setup.ts) every test is skipped rather than failed.
  skipWithoutDataset: [async ({}, use) => {
    test.skip(!existsSync(dataset), datasetAbsent);
    await use();
  }, { auto: true }],

  // A shop's product page on another origin (port), for the widget: it embeds /widget.js from the
  // Lookalike server, which allows this origin with --cors-origin.
  shop: [async ({}, use) => {
    const shop: Shop = { origin: '', lookalike: '' };
    const http = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      if (url.pathname !== '/product.html') return void res.writeHead(404).end();
      const item = url.searchParams.get('item') ?? '';
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(`<!doctype html>
<html><head><meta charset="utf-8"><title>Shop</title><style>h2 { color: red; font-size: 40px }</style></head>
<body><h1>Product ${item}</h1>
<div id="row" data-lookalike-item="${item}"></div>
<div id="three" data-lookalike-item="${item}" data-lookalike-k="3" data-lookalike-heading=""></div>
<div id="unknown" data-lookalike-item="no-such-item"></div>
<script src="${shop.lookalike}/widget.js" async></script>
</body></html>`);
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    shop.origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    await use(shop);
    http.closeAllConnections();
    http.close();
  }, { scope: 'worker' }],

  // The first PER_CATEGORY photos of each category, imported into a temp data dir and served.
  server: [async ({ shop }, use) => {
    const work = mkdtempSync(join(tmpdir(), 'lookalike-e2e-'));
    const subset = join(work, 'photos');
    const dataDir = join(work, 'data');
    try {
      for (const c of CATEGORIES) {
        mkdirSync(join(subset, c), { recursive: true });
        const files = readdirSync(join(dataset, c)).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort(byNumber).slice(0, PER_CATEGORY);
        for (const f of files) symlinkSync(join(dataset, c, f), join(subset, c, f));
      }
      const r = spawnSync(binary, ['--data', dataDir, 'import', subset], { encoding: 'utf8', timeout: 300_000 });
      appendFileSync(join(outDir, 'import.log'), `${r.stdout}\n${r.stderr}`);
      if (r.status !== 0) throw new Error(`import failed (exit ${r.status}): ${(r.stderr ?? '').slice(-2000)}`);
      writeFileSync(join(work, 'admin-token'), ADMIN_TOKEN);
      const started = await startServer({ work, data: dataDir, shop });
      shop.lookalike = started.base;
      const copiedPhoto = join(subset, 'shirts', readdirSync(join(subset, 'shirts')).sort(byNumber)[0]!);
      await use({ base: started.base, work, dataDir, copiedPhoto }).finally(() => stopServer(started.process));
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }, { scope: 'worker', timeout: 420_000 }],

  // API calls go to the catalog's server. (Not through the baseURL option: the context options
  // are set up before skipWithoutDataset, so the server would start even to be skipped.)
  request: async ({ playwright, server }, use) => {
    const request = await playwright.request.newContext({ baseURL: server.base });
    await use(request);
    await request.dispose();
  },

  // Each test has a fresh browser context: nothing (localStorage included) is left from the one before.
  page: async ({ page, server }, use) => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) errors.push(`console: ${m.text()}`);
    });
    await page.addInitScript(recordSearchOptions);
    await page.goto(server.base);
    await use(page);
    expect(errors, 'errors in the page').toEqual([]);
  },
});

export const isSearch = (r: Request) => r.url().endsWith('/api/v1/search') && r.method() === 'POST';
export const isSimilar = (r: Request) => /\/api\/v1\/items\/[^/]+\/similar\?/.test(r.url());

export const cards = (page: Page) => page.getByTestId('result-card');
export const cardIds = (page: Page) => cards(page).evaluateAll((els) => els.map((e) => e.getAttribute('data-id')));
export const cardCategories = (page: Page) => cards(page).evaluateAll((els) => els.map((e) => e.getAttribute('data-category')));

/** Waits until exactly `n` cards show and no search is in progress (both at once). */
export const waitForCards = (page: Page, n: number) =>
  expect(page.locator(':root:not(:has([aria-busy="true"])) [data-testid="result-card"]')).toHaveCount(n, { timeout: 30_000 });

/** Chooses `photo` in the file input; resolves once the page has sent its search. */
export const upload = (page: Page, photo: string) =>
  Promise.all([page.waitForRequest(isSearch), page.getByTestId('file-input').setInputFiles(photo)]);

type Item = { id: string; category: string; image_url: string };
/** The catalog's items, from GET /api/v1/items?QUERY. */
export const listItems = async (request: APIRequestContext, query: string): Promise<Item[]> =>
  (await (await request.get(`/api/v1/items?${query}`)).json()).items;
/** Sets an item's fields over the admin API. */
export async function patchItem(request: APIRequestContext, id: string, data: object) {
  expect(await request.patch(`/api/v1/items/${encodeURIComponent(id)}`, { headers: ADMIN, data }), `PATCH ${id}`).toBeOK();
}

/** How many searches (with an options field) the page has sent. */
export const searchCount = (page: Page) => page.evaluate(() => window.__searchOptions.length);

type SearchOptions = { k: number; category: string; crop?: { x: number; y: number; w: number; h: number }; filters?: unknown; color_weight?: number };

/** The `options` JSON of the latest multipart POST /api/v1/search the page sent. */
export async function lastSearchOptions(page: Page): Promise<SearchOptions> {
  const all = await page.evaluate(() => window.__searchOptions);
  expect(all.length, 'the page sent a search with an options field').toBeGreaterThan(0);
  return JSON.parse(String(all.at(-1)));
}

/** A screenshot in web/test-output/NAME.png, once the images it shows have loaded. */
export async function shot(page: Page, name: string, fullPage = false) {
  // Result images load lazily: wait for those on screen (all of them for a full-page picture).
  await page.locator('img').evaluateAll((imgs: HTMLImageElement[], all) => Promise.all(imgs.map((img) => {
    const r = img.getBoundingClientRect();
    if (!all && (r.bottom < 0 || r.top > window.innerHeight)) return null;
    img.loading = 'eager';
    return img.decode().catch(() => {});
  })), fullPage);
  await page.screenshot({ path: join(outDir, `${name}.png`), fullPage });
}
