#!/usr/bin/env node
// End-to-end tests of the web page against the real C++ server, in Debian's Chromium.
//
// It imports a small subset of ../shared/datasets/fashion6-dev (from the repo root) into a temp
// data dir, starts `lookalike serve --port 0 --web-root web/dist`, waits for /readyz, drives the
// page with playwright-core, then stops the server with SIGTERM. Screenshots and the server log
// go to web/test-output/. Prints "e2e: N passed, N failed" and exits non-zero on any failure.
//
// Environment: LOOKALIKE_BIN (default build/src/lookalike), CHROMIUM (default /usr/bin/chromium),
// LOOKALIKE_DATASET (default ../shared/datasets/fashion6-dev), E2E_ONLY (substring of test names).
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const webDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const repoRoot = resolve(webDir, '..');
const binary = resolve(repoRoot, process.env.LOOKALIKE_BIN ?? 'build/src/lookalike');
const dataset = resolve(repoRoot, process.env.LOOKALIKE_DATASET ?? '../shared/datasets/fashion6-dev');
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const distDir = join(webDir, 'dist');
const outDir = join(webDir, 'test-output');
const only = process.env.E2E_ONLY ?? '';

const CATEGORIES = ['coat', 'dress', 'hood', 'jumper', 'shirts', 'sweater'];
// Enough per category that "auto" (search inside one category) can fill 12 cards.
const PER_CATEGORY = 16;
// Not in the imported subset (the first 16 of each folder), and confidently classified.
const QUERY_PHOTO = join(dataset, 'shirts', '37.jpg');
const SECOND_PHOTO = join(dataset, 'hood', '37.jpg');
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

const started = Date.now();
const log = (msg) => console.log(`[e2e ${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`);

function fail(msg) {
  console.error(`e2e: ${msg}`);
  console.log('e2e: 0 passed, 1 failed');
  process.exit(1);
}

function assert(cond, msg) {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}

function assertEq(actual, expected, msg) {
  if (actual !== expected) throw new Error(`${msg}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

// ---------------------------------------------------------------- setup

if (!existsSync(dataset)) {
  if (process.env.CI === 'true') {
    console.log(`e2e: the dataset ${dataset} is absent, and CI=true requires it.`);
    console.log('e2e: 0 passed, 1 failed');
    process.exit(1);
  }
  console.log(`e2e: SKIPPED: the dataset ${dataset} is absent, so there is no catalog to test against.`);
  console.log('e2e: 0 passed, 0 failed, 1 skipped');
  process.exit(0);
}
if (!existsSync(binary)) fail(`the server binary ${binary} is missing: build it first (scripts/build.sh).`);
if (!existsSync(join(distDir, 'index.html'))) fail(`${distDir}/index.html is missing: run scripts/build-web.sh first.`);
if (!existsSync(chromiumPath)) fail(`${chromiumPath} is missing: apt-get install -y chromium`);
{
  const v = spawnSync(chromiumPath, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  if (v.status !== 0) fail(`${chromiumPath} --version failed: ${v.stderr || v.error}`);
  log(`browser: ${v.stdout.trim()}`);
}

mkdirSync(outDir, { recursive: true });
for (const f of readdirSync(outDir)) if (f.endsWith('.png') || f === 'server.log' || f === 'import.log') rmSync(join(outDir, f));
const work = mkdtempSync(join(tmpdir(), 'lookalike-e2e-'));
const subset = join(work, 'photos');
const dataDir = join(work, 'data');
for (const c of CATEGORIES) {
  mkdirSync(join(subset, c), { recursive: true });
  const files = readdirSync(join(dataset, c))
    .filter((f) => /\.(jpe?g|png)$/i.test(f))
    .sort((a, b) => parseInt(a, 10) - parseInt(b, 10) || a.localeCompare(b))
    .slice(0, PER_CATEGORY);
  for (const f of files) symlinkSync(join(dataset, c, f), join(subset, c, f));
}
// A catalog photo the copy test lists a second time (the first shirts photo of the subset).
const COPIED_PHOTO = join(subset, 'shirts', readdirSync(join(subset, 'shirts')).sort((a, b) => parseInt(a, 10) - parseInt(b, 10))[0]);

log(`importing ${CATEGORIES.length * PER_CATEGORY} photos into ${dataDir}`);
{
  const r = spawnSync(binary, ['--data', dataDir, 'import', subset], { encoding: 'utf8', timeout: 300_000 });
  writeFileSync(join(outDir, 'import.log'), `${r.stdout}\n${r.stderr}`);
  if (r.status !== 0) fail(`import failed (exit ${r.status}): ${r.stderr.slice(-2000)}`);
  log(r.stdout.trim().split('\n').slice(-2).join(' | '));
}

let server = null;
const extraServers = new Set();
function stopServer() {
  if (server && server.exitCode === null) server.kill('SIGTERM');
}
process.on('exit', () => {
  stopServer();
  for (const s of extraServers) if (s.exitCode === null) s.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

// A shop's product page on another origin (port), for the widget: it embeds /widget.js from the
// Lookalike server, which allows this origin with --cors-origin.
let lookalikeBase = '';
const shop = createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (url.pathname !== '/product.html') {
    res.writeHead(404).end();
    return;
  }
  const item = url.searchParams.get('item') ?? '';
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(`<!doctype html>
<html><head><meta charset="utf-8"><title>Shop</title><style>h2 { color: red; font-size: 40px }</style></head>
<body><h1>Product ${item}</h1>
<div id="row" data-lookalike-item="${item}"></div>
<div id="three" data-lookalike-item="${item}" data-lookalike-k="3" data-lookalike-heading=""></div>
<div id="unknown" data-lookalike-item="no-such-item"></div>
<script src="${lookalikeBase}/widget.js" async></script>
</body></html>`);
});
await new Promise((r) => shop.listen(0, '127.0.0.1', r));
const shopOrigin = `http://127.0.0.1:${shop.address().port}`;
process.on('exit', () => shop.close());
const ADMIN_TOKEN = 'e2e-admin-token-0123456789';
writeFileSync(join(work, 'admin-token'), ADMIN_TOKEN);

// Starts `lookalike serve` on `data` and waits for /readyz; returns its address and process.
async function spawnServer({ data = dataDir, extraArgs = [], logName = 'server.log' } = {}) {
  const serverLog = createWriteStream(join(outDir, logName));
  const args = ['--data', data, 'serve', '--host', '127.0.0.1', '--port', '0', '--web-root', distDir,
    '--cors-origin', shopOrigin, '--admin-token-file', join(work, 'admin-token'), ...extraArgs];
  const server = spawn(binary, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stderr.pipe(serverLog);
  const base = await new Promise((resolveBase, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`the server printed no address in 60 s:\n${buf}`)), 60_000);
    server.stdout.on('data', (chunk) => {
      buf += chunk;
      serverLog.write(chunk);
      const m = buf.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) {
        clearTimeout(timer);
        resolveBase(m[1]);
      }
    });
    server.on('exit', (code) => reject(new Error(`the server exited (${code}) before listening:\n${buf}`)));
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const r = await fetch(`${base}/readyz`);
      if (r.status === 200) break;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error('/readyz did not answer 200 within 60 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  return { base, server };
}

async function startServer() {
  const started = await spawnServer();
  server = started.server;
  return started.base;
}

// ---------------------------------------------------------------- helpers

// Chromium does not report the body of a multipart upload to the test, so the page's fetch is
// wrapped (in the test only) to record the `options` field of every POST /api/v1/search.
const RECORD_OPTIONS = () => {
  const original = window.fetch.bind(window);
  window.__searchOptions = [];
  window.fetch = (input, init) => {
    const url = typeof input === 'string' ? input : input.url;
    if (url.endsWith('/api/v1/search') && init?.body instanceof FormData) {
      window.__searchOptions.push(init.body.get('options'));
    }
    return original(input, init);
  };
};

/** The `options` JSON of the latest multipart POST /api/v1/search the page sent. */
async function lastSearchOptions(page) {
  const all = await page.evaluate(() => window.__searchOptions);
  assert(all && all.length > 0, 'the page sent a search with an options field');
  return JSON.parse(all[all.length - 1]);
}

const isSearch = (r) => r.url().endsWith('/api/v1/search') && r.method() === 'POST';
const isSimilar = (r) => /\/api\/v1\/items\/[^/]+\/similar\?/.test(r.url());

async function cards(page) {
  return page.locator('[data-testid="result-card"]');
}

async function waitForCards(page, n) {
  await page.waitForFunction(
    (count) => document.querySelectorAll('[data-testid="result-card"]').length === count && !document.querySelector('[aria-busy="true"]'),
    n,
    { timeout: 30_000 },
  );
}

async function upload(page, photo) {
  const [request] = await Promise.all([page.waitForRequest(isSearch), page.setInputFiles('[data-testid="file-input"]', photo)]);
  return request;
}

async function cardCategories(page) {
  return (await cards(page)).evaluateAll((els) => els.map((e) => e.getAttribute('data-category')));
}

async function shot(page, name, fullPage = false) {
  // Result images load lazily: wait for those on screen (all of them for a full-page picture).
  await page.locator('img').evaluateAll(
    (imgs, all) =>
      Promise.all(
        imgs.map((img) => {
          const r = img.getBoundingClientRect();
          if (!all && (r.bottom < 0 || r.top > window.innerHeight)) return null;
          img.loading = 'eager';
          return img.decode().catch(() => {});
        }),
      ),
    fullPage,
  );
  await page.screenshot({ path: join(outDir, `${name}.png`), fullPage });
}

// ---------------------------------------------------------------- scenarios

const tests = [];
const test = (name, fn, { timeoutMs = 90_000 } = {}) => tests.push({ name, fn, timeoutMs });

test('loads in Korean (browser locale) with an empty state and the category list', async ({ page }) => {
  await assertText(page, 'h1', 'Lookalike');
  await page.getByText('사진으로 시작하세요').waitFor();
  assertEq(await page.evaluate(() => document.documentElement.lang), 'ko', 'html lang');
  await page.getByRole('button', { name: '사진 선택' }).waitFor();
  // auto, all and one option per imported category
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="category-select"] option').length === 8);
  const labels = await page.locator('[data-testid="category-select"] option').allTextContents();
  assert(labels.some((l) => l.startsWith('셔츠 (16)')), `a translated category with its count, got ${labels.join(', ')}`);
  await shot(page, 'desktop-empty');
});

test('upload a photo: 12 cards, all in the predicted category (auto mode)', async ({ page }) => {
  await upload(page, QUERY_PHOTO);
  const options = await lastSearchOptions(page);
  assertEq(options.k, 12, 'k sent');
  assertEq(options.category, 'auto', 'category sent');
  assert(!('crop' in options), 'no crop for a fresh upload');
  await waitForCards(page, 12);
  const banner = page.locator('[data-testid="banner"]');
  const predicted = await banner.getAttribute('data-category');
  assertEq(predicted, 'shirts', 'predicted category of shirts/37.jpg');
  assertEq(await banner.getAttribute('data-fallback'), 'false', 'fallback used');
  const cats = await cardCategories(page);
  assert(cats.every((c) => c === predicted), `every card is ${predicted}: ${cats.join(',')}`);
  await assertText(page, '[data-testid="banner"]', '예측 카테고리: 셔츠');
  await assertText(page, '[data-testid="searched"]', '셔츠에서 검색함');
  await assertText(page, '[data-testid="timings"]', '전체');
  const score = await page.locator('.result-score').first().textContent();
  assert(/^\D*\d{1,3}%$/.test(score.trim()), `score shown as a percentage: ${score}`);
  const imgOk = await page.locator('[data-testid="result-card"] img').first().evaluate((img) => img.complete && img.naturalWidth > 0);
  assert(imgOk, 'the first result image loaded');
  assert(/\?search=\d+$/.test(page.url()), `URL names the search: ${page.url()}`);
  await page.locator('[data-testid="result-card"] img').last().scrollIntoViewIfNeeded();
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot(page, 'desktop-results');
});

test('crop then search: the request carries a crop in source pixels', async ({ page }) => {
  await upload(page, QUERY_PHOTO);
  await waitForCards(page, 12);
  const size = page.locator('[data-testid="crop-size"]');
  const before = await size.textContent();
  const m = before.match(/\(원본 (\d+) × (\d+)px\)/);
  assert(m, `natural size shown: ${before}`);
  const [W, H] = [Number(m[1]), Number(m[2])];
  await page.getByLabel('확대').fill('2');
  // The cropper reports the new area once it has settled.
  await page.waitForFunction(() => document.querySelector('[data-testid="crop-size"]')?.getAttribute('data-crop') !== '');
  // Move the photo under the box with the keyboard (the crop area is focusable).
  await page.getByLabel(/자르기 영역/).focus();
  for (let i = 0; i < 5; i++) await page.keyboard.press('ArrowRight');
  await page.waitForTimeout(300);
  const [request] = await Promise.all([page.waitForRequest(isSearch), page.getByRole('button', { name: '선택 영역으로 검색' }).click()]);
  assert(request, 'search request seen');
  const { crop } = await lastSearchOptions(page);
  assert(crop, 'a crop was sent');
  for (const key of ['x', 'y', 'w', 'h']) assert(Number.isInteger(crop[key]), `crop.${key} is an integer`);
  assert(crop.x >= 0 && crop.y >= 0 && crop.x + crop.w <= W && crop.y + crop.h <= H, `crop ${JSON.stringify(crop)} inside ${W}x${H}`);
  assert(Math.abs(crop.w - W / 2) <= 2 && Math.abs(crop.h - H / 2) <= 2, `zoom 2 gives half the photo: ${JSON.stringify(crop)} of ${W}x${H}`);
  await waitForCards(page, 12);
  await assertText(page, '#results-heading', '내 사진의 선택 영역과 닮은 상품');
  await shot(page, 'desktop-crop');
});

test('open a card, keyboard in the dialog, "more like this", back and forward', async ({ page }) => {
  await upload(page, QUERY_PHOTO);
  await waitForCards(page, 12);
  const uploadUrl = page.url();
  const uploadIds = await page.locator('[data-testid="result-card"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-id')));
  const first = page.locator('[data-testid="result-card"] button').first();
  const firstId = await page.locator('[data-testid="result-card"]').first().getAttribute('data-id');
  await first.click();
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  await assertText(page, '[data-testid="item-dialog"]', firstId);
  await dialog.locator('img').evaluate((img) => img.decode());
  await shot(page, 'desktop-dialog');
  // Focus stays inside while tabbing; Escape closes and gives focus back to the card.
  for (let i = 0; i < 6; i++) {
    await page.keyboard.press('Tab');
    assert(await dialog.evaluate((d) => d.contains(document.activeElement)), `focus inside the dialog after ${i + 1} Tab`);
  }
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  assert(await first.evaluate((b) => b === document.activeElement), 'focus is back on the card');
  // Open with the keyboard, then "more like this".
  await page.keyboard.press('Enter');
  await dialog.waitFor();
  const [request] = await Promise.all([page.waitForRequest(isSimilar), dialog.getByRole('button', { name: '이것과 닮은 상품 더 보기' }).click()]);
  const url = new URL(request.url());
  assertEq(decodeURIComponent(url.pathname), `/api/v1/items/${firstId}/similar`, 'similar path');
  assertEq(url.searchParams.get('k'), '12', 'similar k');
  assertEq(url.searchParams.get('category'), 'auto', 'similar category');
  await waitForCards(page, 12);
  await assertText(page, '#results-heading', firstId);
  assertEq(new URL(page.url()).searchParams.get('similar'), firstId, 'URL after more like this');
  // New results: the item itself is left out, and the list differs from the photo's.
  const similarIds = await page.locator('[data-testid="result-card"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-id')));
  assert(!similarIds.includes(firstId), `the item itself is not among its similar items: ${similarIds.join(',')}`);
  assert(similarIds.join() !== uploadIds.join(), 'the similar results differ from the photo results');

  // Back: the uploaded-photo search comes back from memory, without uploading again.
  let uploads = 0;
  page.on('request', (r) => isSearch(r) && uploads++);
  await page.goBack();
  await page.waitForFunction((u) => location.href === u, uploadUrl);
  await assertText(page, '#results-heading', '내 사진과 닮은 상품');
  await waitForCards(page, 12);
  assertEq(uploads, 0, 'uploads after going back');
  await page.goForward();
  await assertText(page, '#results-heading', firstId);
  await waitForCards(page, 12);
  // A ?similar= link works on its own (a reload or a bookmark).
  await page.reload();
  await assertText(page, '#results-heading', firstId);
  await waitForCards(page, 12);
});

test('30 results in all categories, remembered after a reload', async ({ page }) => {
  await upload(page, QUERY_PHOTO);
  await waitForCards(page, 12);
  await Promise.all([page.waitForRequest(isSearch), page.locator('[data-testid="category-select"]').selectOption('all')]);
  assertEq((await lastSearchOptions(page)).category, 'all', 'category after choosing all');
  await waitForCards(page, 12);
  // Typed key by key: the debounce must not search for "3" on the way to "30".
  const count = page.locator('[data-testid="count-input"]');
  await count.fill('');
  await Promise.all([page.waitForRequest(isSearch), count.pressSequentially('30', { delay: 120 })]);
  await waitForCards(page, 30);
  const options = await lastSearchOptions(page);
  assertEq(options.k, 30, 'k after typing 30');
  assertEq(options.category, 'all', 'category kept');
  assertEq(await page.evaluate(() => window.__searchOptions.length), 3, 'searches sent (photo, all, 30: none for 3)');
  const cats = new Set(await cardCategories(page));
  assert(cats.size > 1, `all categories give several categories: ${[...cats].join(',')}`);
  await assertText(page, '[data-testid="searched"]', '모든 카테고리에서 검색함');
  await shot(page, 'desktop-30-all', true);
  // Out of range: a visible message and no search.
  await page.locator('[data-testid="count-input"]').fill('501');
  await page.getByText('1부터 500까지의 정수를 입력하세요.').waitFor();
  await page.locator('[data-testid="count-input"]').fill('30');
  await page.reload();
  assertEq(await page.locator('[data-testid="count-input"]').inputValue(), '30', 'count after reload');
  assertEq(await page.locator('[data-testid="category-select"]').inputValue(), 'all', 'category after reload');
  // The photo is gone after a reload; the page says so.
  await page.getByText('이 검색은 더 이상 볼 수 없습니다').waitFor();
});

test('a photo listed twice shows once, saying "+1 similar copies"', async ({ page, base }) => {
  // Listed a second time under another id, as shops do; adding it finds the copy at once.
  const form = new FormData();
  form.append('image', new Blob([readFileSync(COPIED_PHOTO)], { type: 'image/jpeg' }), 'twin.jpg');
  form.append('metadata', JSON.stringify({ id: 'shirts-twin', category: 'shirts' }));
  const added = await fetch(`${base}/api/v1/items`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, body: form });
  assertEq(added.status, 201, 'the second listing is added');
  try {
    await copiesShowOnce(page);
  } finally {
    const removed = await fetch(`${base}/api/v1/items/shirts-twin`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    assertEq(removed.status, 200, 'the second listing is removed');
  }
});

async function copiesShowOnce(page) {
  await upload(page, COPIED_PHOTO);
  await waitForCards(page, 12);
  const first = page.locator('[data-testid="result-card"]').first();
  await assertText(page, '[data-testid="result-card"]:first-child [data-testid="hidden-copies"]', '비슷한 사본 +1');
  assertEq(await page.locator('[data-testid="hidden-copies"]').count(), 1, 'one card stands for copies');
  const ids = await page.locator('[data-testid="result-card"]').evaluateAll((cards) => cards.map((c) => c.dataset.id));
  assertEq(new Set(ids).size, ids.length, 'no item twice');
  assert(!ids.includes('shirts-twin') || ids[0] === 'shirts-twin', `the photo and its copy share one card: ${ids.join(',')}`);
  const title = await first.locator('[data-testid="hidden-copies"]').getAttribute('title');
  assert(title.includes(ids[0] === 'shirts-twin' ? 'shirts-' : 'shirts-twin'), `the badge names the copy: ${title}`);
  await shot(page, 'hidden-copies');
}

test('filters: a price range and an attribute value from the catalog narrow the results', async ({ page, base }) => {
  const items = (await (await fetch(`${base}/api/v1/items?category=shirts&limit=200`)).json()).items;
  const patch = async (id, body) => {
    const r = await fetch(`${base}/api/v1/items/${encodeURIComponent(id)}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert(r.ok, `PATCH ${id}: HTTP ${r.status}`);
  };
  for (const [i, it] of items.entries()) await patch(it.id, { price: 10 * (i + 1), attributes: { fit: i % 2 ? 'slim' : 'loose' } });
  try {
    await page.reload();  // the page reads the catalog's filters when it loads
    await assertText(page, '[data-testid="filters"]', `10 ~ ${10 * items.length}`);
    await page.fill('[data-testid="price-min"]', '50');
    await page.locator('[data-testid="price-min"]').blur();
    await page.selectOption('[data-testid="attribute-fit"]', '"slim"');
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/api/v1/search') && r.request().method() === 'POST'),
      upload(page, QUERY_PHOTO),
    ]);
    const options = await lastSearchOptions(page);
    assertEq(JSON.stringify(options.filters), JSON.stringify({ price: { min: 50 }, attributes: { fit: 'slim' } }), 'filters sent');
    const results = (await response.json()).results;
    assert(results.length > 0, 'some shirts pass the filters');
    for (const r of results) assert(r.metadata.price >= 50 && r.metadata.attributes.fit === 'slim', `${r.id} passes: ${JSON.stringify(r.metadata)}`);
    await waitForCards(page, results.length);
    await shot(page, 'filters', true);
    await page.click('[data-testid="clear-filters"]');
    assertEq(await page.inputValue('[data-testid="price-min"]'), '', 'cleared');
  } finally {
    for (const it of items) await patch(it.id, { price: null, attributes: { fit: null } });
  }
});

test('the colour slider: the search weighs colour and each card says how close its colours are', async ({ page }) => {
  await upload(page, QUERY_PHOTO);
  await waitForCards(page, 12);
  assertEq(await page.locator('[data-testid="color-similarity"]').count(), 0, 'no colour figure while the slider is off');
  await assertText(page, '[data-testid="color-weight-value"]', '끔');
  await Promise.all([page.waitForRequest(isSearch), page.locator('[data-testid="color-weight"]').fill('0.6')]);
  assertEq((await lastSearchOptions(page)).color_weight, 0.6, 'color_weight sent');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="color-similarity"]').length === 12);
  const shown = await page.locator('[data-testid="color-similarity"]').allTextContents();
  assert(shown.every((t) => /^색상 \d{1,3}%$/.test(t.trim())), `colour figures as percentages: ${shown.join(', ')}`);
  await assertText(page, '[data-testid="color-weight-value"]', '60%');
  await shot(page, 'desktop-colour');
  // "More like this" carries the weight too, as a query parameter.
  await page.locator('[data-testid="result-card"] button').first().click();
  const [request] = await Promise.all([
    page.waitForRequest(isSimilar),
    page.getByRole('button', { name: '이것과 닮은 상품 더 보기' }).click(),
  ]);
  assertEq(new URL(request.url()).searchParams.get('color_weight'), '0.6', 'color_weight of more like this');
  await page.reload();
  assertEq(await page.locator('[data-testid="color-weight"]').inputValue(), '0.6', 'slider after reload');
});

test('switch to English and back to Korean', async ({ page }) => {
  await upload(page, QUERY_PHOTO);
  await waitForCards(page, 12);
  const koTexts = ['내 사진', '검색 옵션', '결과 개수', '내 사진과 닮은 상품', '예측 카테고리: 셔츠'];
  for (const text of koTexts) await page.getByText(text, { exact: false }).first().waitFor();
  await page.getByRole('button', { name: 'English' }).click();
  for (const text of ['Your photo', 'Search options', 'Number of results', 'Items like your photo', 'Looks like: Shirt', 'Searched in Shirt']) {
    await page.getByText(text, { exact: false }).first().waitFor({ timeout: 5000 });
  }
  assertEq(await page.evaluate(() => document.documentElement.lang), 'en', 'html lang');
  assertEq(await page.getByText('검색 옵션').count(), 0, 'Korean heading gone');
  assertEq(await page.getByRole('button', { name: 'English' }).getAttribute('aria-pressed'), 'true', 'English pressed');
  await shot(page, 'desktop-english');
  await page.reload();
  await page.getByText('Start with a photo').or(page.getByText('This search is no longer available')).first().waitFor();
  await page.getByRole('button', { name: '한국어' }).click();
  await page.getByText('검색 옵션').waitFor();
  assertEq(await page.getByText('Search options').count(), 0, 'English heading gone');
  assertEq(await page.evaluate(() => document.documentElement.lang), 'ko', 'html lang');
});

test('a text file, a broken image, a huge file and an SVG the server refuses all show errors', async ({ page }) => {
  let uploads = 0;
  page.on('request', (r) => isSearch(r) && uploads++);
  await page.setInputFiles('[data-testid="file-input"]', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hello, not a photo') });
  let alert = page.getByRole('alert');
  await alert.waitFor();
  await assertText(page, '[role="alert"]', '이미지 파일이 아닙니다');
  await shot(page, 'desktop-error-text-file');
  await page.setInputFiles('[data-testid="file-input"]', { name: 'broken.jpg', mimeType: 'image/jpeg', buffer: Buffer.from('not really a jpeg') });
  await page.getByText('이미지를 열 수 없습니다').waitFor();
  // Over 64 MB the page does not even read it (Playwright takes files that large by path).
  const huge = join(work, 'huge.jpg');
  writeFileSync(huge, Buffer.alloc(65 * 1024 * 1024, 1));
  await page.setInputFiles('[data-testid="file-input"]', huge);
  await page.getByText('최대 64MB까지').waitFor();
  assertEq(uploads, 0, 'nothing was uploaded for files refused in the browser');
  // The browser can show an SVG but the server cannot decode one: its JSON error is shown.
  const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="80" height="100"><rect width="80" height="100" fill="red"/></svg>';
  await page.setInputFiles('[data-testid="file-input"]', { name: 'shape.svg', mimeType: 'image/svg+xml', buffer: Buffer.from(svg) });
  const box = page.locator('#results [role="alert"]');
  await box.waitFor({ timeout: 15_000 });
  const code = await box.getAttribute('data-error-code');
  assert(['unsupported_media_type', 'unprocessable_image'].includes(code), `server error code shown: ${code}`);
  await assertText(page, '#results [role="alert"]', '서버 메시지:');
  await assertText(page, '#results [role="alert"]', '검색하지 못했습니다');
  await shot(page, 'desktop-error-server');
});

test('a 29-megapixel photo over 10 MB is reduced in the browser, then sent and answered', async ({ page, base }) => {
  const shirt = (await (await fetch(`${base}/api/v1/items?category=shirts&limit=1`)).json()).items[0];
  // The photo is made in the page: a catalog shirt drawn at 4,800 × 6,000 px with fine noise (a
  // fixed-seed generator), saved as a quality-1.0 JPEG, which takes it over the server's 10 MB.
  const [request, bytes] = await Promise.all([
    page.waitForRequest(isSearch, { timeout: 60_000 }),
    page.evaluate(async (src) => {
      const img = new Image();
      img.src = src;
      await img.decode();
      const canvas = document.createElement('canvas');
      canvas.width = 4800;
      canvas.height = 6000;
      const ctx = canvas.getContext('2d');
      ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
      const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height);
      let seed = 12345;
      for (let i = 0; i < pixels.data.length; i += 4) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        const noise = (seed >>> 24) % 24;
        pixels.data[i] += noise;
        pixels.data[i + 1] += noise;
        pixels.data[i + 2] += noise;
      }
      ctx.putImageData(pixels, 0, 0);
      const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', 1.0));
      const transfer = new DataTransfer();
      transfer.items.add(new File([blob], 'huge-shirt.jpg', { type: 'image/jpeg' }));
      const input = document.querySelector('[data-testid="file-input"]');
      input.files = transfer.files;
      input.dispatchEvent(new Event('change', { bubbles: true }));
      return blob.size;
    }, shirt.image_url),
  ]);
  log(`made a ${(bytes / 1048576).toFixed(1)} MB photo`);
  assert(bytes > 10 * 1024 * 1024, `the made photo is over 10 MB: ${bytes} bytes`);
  assert(request.url().endsWith('/api/v1/search'), 'searched');
  // The server takes at most 10 MB: cards prove the reduced photo was accepted.
  await waitForCards(page, 12);
  await assertText(page, '[data-testid="upload-notice"]', '4,800 × 6,000px');
  await assertText(page, '[data-testid="upload-notice"]', '3,200 × 4,000px');
  await assertText(page, '[data-testid="crop-size"]', '(원본 3200 × 4000px)');
  // What the editor shows (and what was sent) decodes as a 3,200 × 4,000 image.
  const shown = await page.locator('.reactEasyCrop_Image').evaluate(async (img) => {
    await img.decode();
    return `${img.naturalWidth}x${img.naturalHeight}`;
  });
  assertEq(shown, '3200x4000', 'the reduced photo as decoded');
  // Reduced, it is still recognised as the very shirt it was made from.
  assertEq(await page.locator('[data-testid="result-card"]').first().getAttribute('data-id'), shirt.id, 'first hit');
  await shot(page, 'reduced-upload');
});

test('drag & drop and paste a photo', async ({ page }) => {
  // A real JPEG, fetched from the catalog inside the page, dropped on the drop zone as a file.
  const dropped = page.waitForRequest(isSearch);
  await page.evaluate(async () => {
    const blob = await (await fetch('/api/v1/items/coat-1/image')).blob();
    const dt = new DataTransfer();
    dt.items.add(new File([blob], 'dropped.jpg', { type: 'image/jpeg' }));
    const zone = document.querySelector('[data-testid="dropzone"]');
    for (const type of ['dragenter', 'dragover', 'drop']) {
      zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
    }
  });
  await dropped;
  await waitForCards(page, 12);
  assertEq(await page.evaluate(() => window.__searchOptions.length), 1, 'searches after the drop');
  // The catalog's own photo: its item comes first, marked as the same item (a byte-identical
  // twin may share the mark); the look-alikes after it are not marked.
  const marked = await (await cards(page)).evaluateAll((els) =>
    els.filter((e) => e.querySelector('[data-testid="same-item"]')).map((e) => e.getAttribute('data-id')),
  );
  assert(marked.includes('coat-1'), `coat-1 is marked as the same item: ${marked.join(',')}`);
  assertEq(await (await cards(page)).first().locator('[data-testid="same-item"]').count(), 1, 'the first card is marked');
  assert(marked.length < 12, 'not every look-alike is the same item');
  // Pasting (Ctrl+V of an image) searches again with the pasted photo.
  const pasted = page.waitForRequest(isSearch);
  await page.evaluate(async () => {
    const blob = await (await fetch('/api/v1/items/dress-1/image')).blob();
    const dt = new DataTransfer();
    dt.items.add(new File([blob], 'pasted.jpg', { type: 'image/jpeg' }));
    window.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
  });
  await pasted;
  await waitForCards(page, 12);
  assertEq(await page.evaluate(() => window.__searchOptions.length), 2, 'searches after the paste');
  assert(/\?search=\d+$/.test(page.url()), 'a pasted search has its own history entry');
});

test('phone viewport (390 px): no sideways scrolling, results in two columns', async ({ page }) => {
  await page.setViewportSize(PHONE);
  await shot(page, 'phone-empty', true);
  await upload(page, SECOND_PHOTO);
  await waitForCards(page, 12);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert(overflow <= 0, `page wider than the phone by ${overflow}px`);
  const lefts = await page.locator('[data-testid="result-card"]').evaluateAll((els) => [...new Set(els.map((e) => Math.round(e.getBoundingClientRect().left)))]);
  assertEq(lefts.length, 2, 'card columns on a phone');
  await shot(page, 'phone-results', true);
  await page.locator('[data-testid="result-card"] button').first().click();
  await page.getByRole('dialog').waitFor();
  await page.getByRole('dialog').locator('img').evaluate((img) => img.decode());
  await shot(page, 'phone-dialog');
});

test('widget.js on a shop page of another origin: linked look-alikes with titles', async ({ page, base }) => {
  // Titles and product links for every item, as a shop would set them.
  const items = (await (await fetch(`${base}/api/v1/items?limit=200`)).json()).items;
  assert(items.length === CATEGORIES.length * PER_CATEGORY, `listed ${items.length} items`);
  for (const it of items) {
    const r = await fetch(`${base}/api/v1/items/${encodeURIComponent(it.id)}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: `Product ${it.id}`, url: `${shopOrigin}/product.html?item=${it.id}` }),
    });
    assert(r.ok, `PATCH ${it.id}: HTTP ${r.status}`);
  }
  const item = items.find((it) => it.category === 'dress').id;
  await page.goto(`${shopOrigin}/product.html?item=${item}`);
  await page.locator('#row[data-lookalike-state="ready"]').waitFor();
  // Playwright's CSS locators pierce the open shadow root the widget renders into.
  const links = page.locator('#row li a');
  assertEq(await links.count(), 6, 'six look-alikes by default');
  assertEq(await page.locator('#row h2').textContent(), 'You may also like', 'heading');
  const heading = await page.locator('#row h2').evaluate((h) => getComputedStyle(h).color);
  assert(heading !== 'rgb(255, 0, 0)', "the shop's CSS does not reach into the widget");
  for (let i = 0; i < 6; i++) {
    const href = await links.nth(i).getAttribute('href');
    assert(href.startsWith(`${shopOrigin}/product.html?item=`) && !href.endsWith(`=${item}`), `link ${href}`);
    const id = href.split('item=')[1];
    assertEq(await links.nth(i).locator('.t').textContent(), `Product ${id}`, 'caption is the title');
    assertEq(await links.nth(i).locator('img').getAttribute('alt'), `Product ${id}`, 'alt is the title');
    await page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await links.nth(i).locator('img').elementHandle());
  }
  assertEq(await page.locator('#three li a').count(), 3, 'data-lookalike-k="3"');
  assertEq(await page.locator('#three h2').count(), 0, 'an empty heading attribute hides the heading');
  await page.locator('#unknown[data-lookalike-state="error"]').waitFor({ state: 'attached' });
  assertEq(await page.locator('#unknown li').count(), 0, 'an unknown item renders nothing');
  // Following a look-alike opens the shop's page for that item, with its own row.
  await links.first().click();
  await page.locator('#row[data-lookalike-state="ready"]').waitFor();
  assert(!page.url().endsWith(`=${item}`), 'navigated to another product');
  await shot(page, 'widget');
});

test('training in the background: its progress while it runs, then the trained version answers', async ({ page }) => {
  // The catalog as imported has no head version (16 photos a category is under the default 20
  // a head needs); a server told to train with 3 starts a training in the background.
  const data = join(work, 'training-data');
  cpSync(dataDir, data, { recursive: true });
  const training = await spawnServer({
    data,
    extraArgs: ['--min-per-category', '3', '--epochs', '30', '--patience', '30', '--activate-anyway'],
    logName: 'server-training.log',
  });
  extraServers.add(training.server);
  try {
    await page.goto(training.base);
    const job = page.locator('[data-testid="activity-train"]');
    await job.waitFor({ timeout: 30_000 });
    await assertText(page, '[data-testid="activity-train"]', '백그라운드에서 카테고리를 학습하는 중');
    await assertText(page, '[data-testid="activity-train"]', '기본 모델이 검색 결과를 냅니다');
    // A counted phase (feature maps, then epochs) shows a bar with its count.
    const counted = await page.waitForFunction(() => {
      const phase = document.querySelector('[data-testid="activity-train"] .activity-phase')?.textContent ?? '';
      const bar = document.querySelector('[data-testid="activity-train"] progress[value]');
      return bar && /^(특징 맵 추출|에포크 \d+\/30|디스크립터 계산) · \d+개 중 [1-9]\d*개/.test(phase) ? phase : null;
    }, null, { timeout: 60_000, polling: 100 });
    log(`training phase seen: ${await counted.jsonValue()}`);
    await shot(page, 'training-progress');
    await page.locator('[data-testid="activity-switched"]').waitFor({ timeout: 150_000 });
    await assertText(page, '[data-testid="activity-switched"]', '모델 버전 1이 이제 검색 결과를 냅니다');
    assertEq(await job.count(), 0, 'no progress once the training has finished');
    await shot(page, 'training-switched');
    await upload(page, QUERY_PHOTO);
    await waitForCards(page, 12);
    await assertText(page, '[data-testid="timings"]', '학습된 모델 v1');
  } finally {
    training.server.kill('SIGTERM');
    await new Promise((r) => (training.server.exitCode !== null ? r() : training.server.once('exit', r)));
    extraServers.delete(training.server);
  }
}, { timeoutMs: 240_000 });

async function assertText(page, selector, text) {
  try {
    await page.locator(selector).filter({ hasText: text }).first().waitFor({ timeout: 10_000 });
  } catch {
    const actual = await page.locator(selector).first().textContent({ timeout: 1000 }).catch(() => '(missing)');
    throw new Error(`${selector} should contain ${JSON.stringify(text)}; it has ${JSON.stringify(actual)}`);
  }
}

// ---------------------------------------------------------------- runner

let base;
try {
  base = await startServer();
} catch (e) {
  fail(`could not start the server: ${e.message}`);
}
lookalikeBase = base;
log(`server at ${base}`);

const profile = mkdtempSync(join(tmpdir(), 'lookalike-e2e-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: chromiumPath,
  headless: true,
  args: CHROMIUM_ARGS,
  locale: 'ko-KR',
  viewport: DESKTOP,
  timeout: 60_000,
});
context.setDefaultTimeout(15_000);
await context.addInitScript(RECORD_OPTIONS);

let passed = 0;
let failed = 0;
for (const { name, fn, timeoutMs } of tests) {
  if (only && !name.includes(only)) continue;
  const t0 = Date.now();
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && !/Failed to load resource/.test(m.text()) && pageErrors.push(`console: ${m.text()}`));
  try {
    await page.setViewportSize(DESKTOP);
    // Each test starts from a clean slate: nothing remembered from the one before.
    await page.goto(base);
    await page.evaluate(() => localStorage.clear());
    await page.goto(base);
    await Promise.race([
      fn({ page, base }),
      new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out after ${timeoutMs / 1000} s`)), timeoutMs)),
    ]);
    if (pageErrors.length) throw new Error(`errors in the page: ${pageErrors.join(' | ')}`);
    passed++;
    log(`PASS ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    log(`FAIL ${name} (${Date.now() - t0} ms)\n    ${String(e.stack || e).split('\n').slice(0, 6).join('\n    ')}`);
    const file = `fail-${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60)}.png`;
    await page.screenshot({ path: join(outDir, file), fullPage: true }).catch(() => {});
  } finally {
    await page.close().catch(() => {});
  }
}

await context.close();
rmSync(profile, { recursive: true, force: true });
stopServer();
await new Promise((r) => (server.exitCode !== null ? r() : server.once('exit', r)));
log(`server stopped (exit ${server.exitCode ?? server.signalCode}); screenshots in ${outDir}`);
console.log(`e2e: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
