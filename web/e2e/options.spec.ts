// The search options: count and category (remembered), the catalog's filters, the colour weight.
import { cardCategories, expect, isSearch, isSimilar, lastSearchOptions, listItems, patchItem, QUERY_PHOTO, searchCount, shot, test, upload, waitForCards } from './fixtures';

test('30 results in all categories, remembered after a reload', async ({ page }) => {
  await upload(page, QUERY_PHOTO);
  await waitForCards(page, 12);
  const category = page.getByTestId('category-select');
  await Promise.all([page.waitForRequest(isSearch), category.selectOption('all')]);
  expect((await lastSearchOptions(page)).category, 'category after choosing all').toBe('all');
  await waitForCards(page, 12);
  // Typed key by key: the debounce must not search for "3" on the way to "30".
  const count = page.getByTestId('count-input');
  await count.fill('');
  await Promise.all([page.waitForRequest(isSearch), count.pressSequentially('30', { delay: 120 })]);
  await waitForCards(page, 30);
  expect(await lastSearchOptions(page), 'k after typing 30, category kept').toMatchObject({ k: 30, category: 'all' });
  expect(await searchCount(page), 'searches sent (photo, all, 30: none for 3)').toBe(3);
  const cats = new Set(await cardCategories(page));
  expect(cats.size, `all categories give several categories: ${[...cats].join(',')}`).toBeGreaterThan(1);
  await expect(page.getByTestId('searched')).toContainText('모든 카테고리에서 검색함');
  await shot(page, 'desktop-30-all', true);
  // Out of range: a visible message and no search.
  await count.fill('501');
  await expect(page.getByText('1부터 500까지의 정수를 입력하세요.')).toBeVisible();
  await count.fill('30');
  await page.reload();
  await expect(count, 'count after reload').toHaveValue('30');
  await expect(category, 'category after reload').toHaveValue('all');
  // The photo is gone after a reload; the page says so.
  await expect(page.getByText('이 검색은 더 이상 볼 수 없습니다')).toBeVisible();
});

test('filters: a price range and an attribute value from the catalog narrow the results', async ({ page, request }) => {
  const items = await listItems(request, 'category=shirts&limit=200');
  for (const [i, it] of items.entries()) await patchItem(request, it.id, { price: 10 * (i + 1), attributes: { fit: i % 2 ? 'slim' : 'loose' } });
  try {
    await page.reload(); // the page reads the catalog's filters when it loads
    await expect(page.getByTestId('filters')).toContainText(`10 ~ ${10 * items.length}`);
    const priceMin = page.getByTestId('price-min');
    await priceMin.fill('50');
    await priceMin.blur();
    await page.getByTestId('attribute-fit').selectOption('"slim"');
    const [response] = await Promise.all([page.waitForResponse((r) => isSearch(r.request())), upload(page, QUERY_PHOTO)]);
    expect((await lastSearchOptions(page)).filters, 'filters sent').toStrictEqual({ price: { min: 50 }, attributes: { fit: 'slim' } });
    const results: { id: string; metadata: { price: number; attributes: { fit: string } } }[] = (await response.json()).results;
    expect(results.length, 'some shirts pass the filters').toBeGreaterThan(0);
    for (const r of results) {
      expect(r.metadata.price >= 50 && r.metadata.attributes.fit === 'slim', `${r.id} passes: ${JSON.stringify(r.metadata)}`).toBe(true);
    }
    await waitForCards(page, results.length);
    await shot(page, 'filters', true);
    await page.getByTestId('clear-filters').click();
    await expect(priceMin, 'cleared').toHaveValue('');
  } finally {
    for (const it of items) await patchItem(request, it.id, { price: null, attributes: { fit: null } });
  }
});

test('the colour slider: the search weighs colour and each card says how close its colours are', async ({ page }) => {
  await upload(page, QUERY_PHOTO);
  await waitForCards(page, 12);
  const similarity = page.getByTestId('color-similarity');
  const weightValue = page.getByTestId('color-weight-value');
  await expect(similarity, 'no colour figure while the slider is off').toHaveCount(0);
  await expect(weightValue).toContainText('끔');
  const slider = page.getByTestId('color-weight');
  await Promise.all([page.waitForRequest(isSearch), slider.fill('0.6')]);
  expect((await lastSearchOptions(page)).color_weight, 'color_weight sent').toBe(0.6);
  await expect(similarity).toHaveCount(12);
  await expect(similarity, 'colour figures as percentages').toHaveText(Array(12).fill(/^\s*색상 \d{1,3}%\s*$/));
  await expect(weightValue).toContainText('60%');
  await shot(page, 'desktop-colour');
  // "More like this" carries the weight too, as a query parameter.
  await page.locator('[data-testid="result-card"] button').first().click();
  const [request] = await Promise.all([page.waitForRequest(isSimilar), page.getByRole('button', { name: '이것과 닮은 상품 더 보기' }).click()]);
  expect(new URL(request.url()).searchParams.get('color_weight'), 'color_weight of more like this').toBe('0.6');
  await page.reload();
  await expect(slider, 'slider after reload').toHaveValue('0.6');
});
