// End-to-end tests of the page against the real C++ server (e2e/fixtures.ts), in Debian's Chromium:
// never a browser of Playwright's own. Settings from the environment: e2e/global-setup.ts; usage:
// web/README.md. One server and a 2-core machine are shared by all tests: one at a time, files in
// alphabetical order.
import { defineConfig } from '@playwright/test';
import { chromiumPath } from './e2e/global-setup';

const only = process.env.E2E_ONLY; // a part of test names, like --grep

export default defineConfig({
  testDir: 'e2e',
  globalSetup: './e2e/global-setup.ts',
  outputDir: 'test-output/results',
  workers: 1,
  fullyParallel: false,
  retries: process.env.CI === 'true' ? 1 : 0,
  forbidOnly: process.env.CI === 'true',
  timeout: 90_000,
  expect: { timeout: 15_000 },
  grep: only ? new RegExp(only.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : undefined,
  // scripts/test-web.sh reads its counts from the JSON report.
  reporter: [['list'], ['html', { open: 'never', outputFolder: 'test-output/report' }], ['json', { outputFile: 'test-output/e2e.json' }]],
  use: {
    launchOptions: {
      executablePath: chromiumPath,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
      timeout: 60_000,
    },
    headless: true,
    locale: 'ko-KR',
    viewport: { width: 1280, height: 800 },
    actionTimeout: 15_000,
    navigationTimeout: 15_000,
    screenshot: { mode: 'only-on-failure', fullPage: true },
    trace: 'retain-on-failure',
  },
});
