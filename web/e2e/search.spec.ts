// The page's first view, a photo search, the same photo listed twice, and the two languages.
import { readFileSync } from 'node:fs';
import { ADMIN, cardCategories, cardIds, cards, expect, lastSearchOptions, QUERY_PHOTO, shot, test, upload, waitForCards } from './fixtures';

test('loads in Korean (browser locale) with an empty state and the category list', async ({ page }) => {
  await expect(page.locator('h1')).toContainText('Lookalike');
  await expect(page.getByText('사진으로 시작하세요')).toBeVisible();
  await expect(page.locator('html')).toHaveAttribute('lang', 'ko');
  await expect(page.getByRole('button', { name: '사진 선택' })).toBeVisible();
  // auto, all and one option per imported category
  const options = page.locator('[data-testid="category-select"] option');
  await expect(options).toHaveCount(8);
  expect(await options.allTextContents(), 'a translated category with its count').toContainEqual(expect.stringMatching(/^셔츠 \(16\)/));
  await shot(page, 'desktop-empty');
});

test('upload a photo: 12 cards, all in the predicted category (auto mode)', async ({ page }) => {
  await upload(page, QUERY_PHOTO);
  const options = await lastSearchOptions(page);
  expect(options, 'k and category sent').toMatchObject({ k: 12, category: 'auto' });
  expect(options, 'no crop for a fresh upload').not.toHaveProperty('crop');
  await waitForCards(page, 12);
  const banner = page.getByTestId('banner');
  await expect(banner, 'predicted category of shirts/37.jpg').toHaveAttribute('data-category', 'shirts');
  await expect(banner, 'fallback used').toHaveAttribute('data-fallback', 'false');
  expect(await cardCategories(page), 'every card is shirts').toEqual(Array(12).fill('shirts'));
  await expect(banner).toContainText('예측 카테고리: 셔츠');
  await expect(page.getByTestId('searched')).toContainText('셔츠에서 검색함');
  await expect(page.getByTestId('timings')).toContainText('전체');
  await expect(page.locator('.result-score').first(), 'score shown as a percentage').toHaveText(/^\D*\d{1,3}%\s*$/);
  const images = cards(page).locator('img');
  expect(await images.first().evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0), 'the first result image loaded').toBe(true);
  await expect(page, 'URL names the search').toHaveURL(/\?search=\d+$/);
  await images.last().scrollIntoViewIfNeeded();
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot(page, 'desktop-results');
});

test('a photo listed twice shows once, saying "+1 similar copies"', async ({ page, request, server }) => {
  // Listed a second time under another id, as shops do; adding it finds the copy at once.
  const image = { name: 'twin.jpg', mimeType: 'image/jpeg', buffer: readFileSync(server.copiedPhoto) };
  const metadata = JSON.stringify({ id: 'shirts-twin', category: 'shirts' });
  const added = await request.post('/api/v1/items', { headers: ADMIN, multipart: { image, metadata } });
  expect(added.status(), 'the second listing is added').toBe(201);
  try {
    await upload(page, server.copiedPhoto);
    await waitForCards(page, 12);
    const badge = cards(page).first().getByTestId('hidden-copies');
    await expect(badge).toContainText('비슷한 사본 +1');
    await expect(page.getByTestId('hidden-copies'), 'one card stands for copies').toHaveCount(1);
    const ids = await cardIds(page);
    expect(new Set(ids).size, 'no item twice').toBe(ids.length);
    expect(!ids.includes('shirts-twin') || ids[0] === 'shirts-twin', `the photo and its copy share one card: ${ids.join(',')}`).toBe(true);
    await expect(badge, 'the badge names the copy').toHaveAttribute('title', ids[0] === 'shirts-twin' ? /shirts-/ : /shirts-twin/);
    await shot(page, 'hidden-copies');
  } finally {
    expect((await request.delete('/api/v1/items/shirts-twin', { headers: ADMIN })).status(), 'the second listing is removed').toBe(200);
  }
});

test('switch to English and back to Korean', async ({ page }) => {
  await upload(page, QUERY_PHOTO);
  await waitForCards(page, 12);
  for (const text of ['내 사진', '검색 옵션', '결과 개수', '내 사진과 닮은 상품', '예측 카테고리: 셔츠']) {
    await expect(page.getByText(text).first()).toBeVisible();
  }
  await page.getByRole('button', { name: 'English' }).click();
  for (const text of ['Your photo', 'Search options', 'Number of results', 'Items like your photo', 'Looks like: Shirt', 'Searched in Shirt']) {
    await expect(page.getByText(text).first()).toBeVisible({ timeout: 5000 });
  }
  await expect(page.locator('html')).toHaveAttribute('lang', 'en');
  await expect(page.getByText('검색 옵션'), 'Korean heading gone').toHaveCount(0);
  await expect(page.getByRole('button', { name: 'English' })).toHaveAttribute('aria-pressed', 'true');
  await shot(page, 'desktop-english');
  await page.reload();
  await expect(page.getByText('Start with a photo').or(page.getByText('This search is no longer available')).first()).toBeVisible();
  await page.getByRole('button', { name: '한국어' }).click();
  await expect(page.getByText('검색 옵션')).toBeVisible();
  await expect(page.getByText('Search options'), 'English heading gone').toHaveCount(0);
  await expect(page.locator('html')).toHaveAttribute('lang', 'ko');
});
