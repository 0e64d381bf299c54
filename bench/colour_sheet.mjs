#!/usr/bin/env node
// The before/after picture of colour re-ranking in docs/quality.md, drawn from colours only (no
// catalog photo is copied): for the first photo of each category folder under QUERIES, one row
// with the query's dominant colours, then its top 12 at color_weight 0 and at WEIGHT, each result
// a bar of its dominant colours by share, and each block's mean CIE76 distance between the
// query's mean colour and the results' (the figure `eval` reports as colour_distance_at_12).
//
//   node bench/colour_sheet.mjs --data DIR --queries FOLDER [--weight 0.5] [--out FILE.svg]
//
// Runs `build/src/lookalike search --json` (twice per query), so the catalog in DIR must be
// trained; the photos are read where they are.
import { execFileSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

function args() {
  const out = { weight: 0.5, out: 'docs/colour-before-after.svg', lookalike: 'build/src/lookalike' };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!['data', 'queries', 'weight', 'out', 'lookalike'].includes(key) || argv[i + 1] === undefined) {
      throw new Error(`usage: colour_sheet.mjs --data DIR --queries FOLDER [--weight W] [--out FILE.svg]`);
    }
    out[key] = key === 'weight' ? Number(argv[i + 1]) : argv[i + 1];
  }
  if (!out.data || !out.queries) throw new Error('--data and --queries are required');
  if (!(out.weight > 0 && out.weight <= 1)) throw new Error('--weight must be within (0, 1]');
  return out;
}

function search(opts, photo, weight) {
  const text = execFileSync(
    opts.lookalike,
    ['--data', opts.data, 'search', photo, '--k', '12', '--color-weight', String(weight), '--json'],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 << 20 },
  );
  return JSON.parse(text);
}

function firstPhotos(folder) {
  return readdirSync(folder, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort()
    .map((category) => {
      const files = readdirSync(join(folder, category))
        .filter((f) => /\.(jpe?g|png)$/i.test(f))
        .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
      return { category, path: join(folder, category, files[0]), name: `${category}/${files[0]}` };
    });
}

const BAR_W = 22;
const BAR_H = 44;
const GAP = 4;

function bar(colors, x, y) {
  let top = y;
  return colors
    .map((c) => {
      const h = Math.max(1, c.share * BAR_H);
      const rect = `<rect x="${x}" y="${top.toFixed(1)}" width="${BAR_W}" height="${h.toFixed(1)}" fill="${c.hex}"/>`;
      top += h;
      return rect;
    })
    .join('');
}

function block(results, x, y) {
  return results.map((r, i) => bar(r.colors ?? [], x + i * (BAR_W + GAP), y)).join('');
}

// The share-weighted mean L*a*b* of a signature: the product's mean colour, as `eval` measures it.
function meanLab(colors) {
  return [0, 1, 2].map((k) => colors.reduce((sum, c) => sum + c.share * c.lab[k], 0));
}

// Mean CIE76 distance between the query's mean colour and each result's (eval's colour figure).
function meanDeltaE(query, results) {
  const q = meanLab(query);
  const d = results.filter((r) => r.colors?.length).map((r) => Math.hypot(...meanLab(r.colors).map((v, k) => v - q[k])));
  return d.length ? d.reduce((a, b) => a + b, 0) / d.length : NaN;
}

function main() {
  const opts = args();
  const rows = firstPhotos(opts.queries).map((q) => {
    const weighed = search(opts, q.path, opts.weight);
    const plain = search(opts, q.path, 0);
    return { q, weighed, plain, before: meanDeltaE(weighed.query.colors, plain.results), after: meanDeltaE(weighed.query.colors, weighed.results) };
  });
  const blockW = 12 * (BAR_W + GAP);
  const left = 150;
  const width = left + BAR_W + 30 + 2 * (blockW + 40);
  const rowH = BAR_H + 34;
  const height = 50 + rows.length * rowH;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${left}" y="20" font-weight="bold">query</text>`,
    `<text x="${left + BAR_W + 30}" y="20" font-weight="bold">top 12, color_weight 0 (look alone)</text>`,
    `<text x="${left + BAR_W + 30 + blockW + 40}" y="20" font-weight="bold">top 12, color_weight ${opts.weight}</text>`,
  ];
  rows.forEach(({ q, weighed, plain, before, after }, i) => {
    const y = 40 + i * rowH;
    const x0 = left + BAR_W + 30;
    const x1 = x0 + blockW + 40;
    parts.push(`<text x="8" y="${y + 16}">${q.name}</text>`);
    parts.push(`<text x="8" y="${y + 32}" fill="#666">searched ${weighed.query.searched}</text>`);
    parts.push(bar(weighed.query.colors ?? [], left, y));
    parts.push(block(plain.results, x0, y));
    parts.push(block(weighed.results, x1, y));
    parts.push(`<text x="${x0}" y="${y + BAR_H + 15}" fill="#666">mean colour distance ${before.toFixed(1)}</text>`);
    parts.push(`<text x="${x1}" y="${y + BAR_H + 15}" fill="#666">mean colour distance ${after.toFixed(1)}</text>`);
  });
  parts.push('</svg>');
  writeFileSync(opts.out, parts.join('\n') + '\n');
  for (const { q, weighed, plain, before, after } of rows) {
    const same = plain.results.filter((r) => weighed.results.some((w) => w.id === r.id)).length;
    console.log(`${q.name}: ${same} of 12 kept; mean colour distance ${before.toFixed(1)} -> ${after.toFixed(1)}`);
  }
  const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
  for (const [label, pick] of [
    ['decode (colours measured here when weighed)', (r) => r.timings_ms.decode],
    ['search (re-ranking included)', (r) => r.timings_ms.search],
  ]) {
    const before = median(rows.map((r) => pick(r.plain)));
    const after = median(rows.map((r) => pick(r.weighed)));
    console.log(`median ${label}: ${before.toFixed(2)} ms at 0, ${after.toFixed(2)} ms at ${opts.weight}`);
  }
  console.log(`wrote ${opts.out}`);
}

main();
