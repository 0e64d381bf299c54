// Training in the background, on a second server over a copy of the catalog.
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { expect, QUERY_PHOTO, shot, startServer, stopServer, test, upload, waitForCards } from './fixtures';

test('training in the background: its progress while it runs, then the trained version answers', async ({ page, server, shop }) => {
  test.setTimeout(240_000);
  // The catalog as imported has no head version (16 photos a category is under the default 20
  // a head needs); a server told to train with 3 starts a training in the background.
  const data = join(server.work, 'training-data');
  cpSync(server.dataDir, data, { recursive: true });
  const extraArgs = ['--min-per-category', '3', '--epochs', '30', '--patience', '30', '--activate-anyway'];
  const training = await startServer({ work: server.work, data, shop, extraArgs, logName: 'server-training.log' });
  try {
    await page.goto(training.base);
    const job = page.getByTestId('activity-train');
    await expect(job).toBeVisible({ timeout: 30_000 });
    await expect(job).toContainText('백그라운드에서 카테고리를 학습하는 중');
    await expect(job).toContainText('기본 모델이 검색 결과를 냅니다');
    // A counted phase (feature maps, then epochs) shows a bar with its count. Phases pass quickly:
    // polled every 100 ms in the page (a locator assertion slows its polling to once a second).
    const counted = await page.waitForFunction(() => {
      const phase = document.querySelector('[data-testid="activity-train"] .activity-phase')?.textContent ?? '';
      const bar = document.querySelector('[data-testid="activity-train"] progress[value]');
      return bar && /^(특징 맵 추출|에포크 \d+\/30|디스크립터 계산) · \d+개 중 [1-9]\d*개/.test(phase) ? phase : null;
    }, null, { timeout: 60_000, polling: 100 });
    console.log(`training phase seen: ${await counted.jsonValue()}`);
    await shot(page, 'training-progress');
    const switched = page.getByTestId('activity-switched');
    await expect(switched).toBeVisible({ timeout: 150_000 });
    await expect(switched).toContainText('모델 버전 1이 이제 검색 결과를 냅니다');
    await expect(job, 'no progress once the training has finished').toHaveCount(0);
    await shot(page, 'training-switched');
    await upload(page, QUERY_PHOTO);
    await waitForCards(page, 12);
    await expect(page.getByTestId('timings')).toContainText('학습된 모델 v1');
  } finally {
    await stopServer(training.process);
  }
});
