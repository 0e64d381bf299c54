// A result's dialog (keyboard and focus), "more like this", and the browser's history.
import { cardIds, cards, expect, isSearch, isSimilar, QUERY_PHOTO, shot, test, upload, waitForCards } from './fixtures';

test('open a card, keyboard in the dialog, "more like this", back and forward', async ({ page }) => {
  await upload(page, QUERY_PHOTO);
  await waitForCards(page, 12);
  const uploadUrl = page.url();
  const uploadIds = await cardIds(page);
  const first = page.locator('[data-testid="result-card"] button').first();
  const firstId = (await cards(page).first().getAttribute('data-id'))!;
  await first.click();
  const dialog = page.getByRole('dialog');
  await expect(dialog).toBeVisible();
  await expect(page.getByTestId('item-dialog')).toContainText(firstId);
  await dialog.locator('img').evaluate((img: HTMLImageElement) => img.decode());
  await shot(page, 'desktop-dialog');
  // Focus stays inside while tabbing; Escape closes and gives focus back to the card.
  for (let i = 0; i < 6; i++) {
    await page.keyboard.press('Tab');
    expect(await dialog.evaluate((d) => d.contains(document.activeElement)), `focus inside the dialog after ${i + 1} Tab`).toBe(true);
  }
  await page.keyboard.press('Escape');
  await expect(dialog).toHaveCount(0);
  await expect(first, 'focus is back on the card').toBeFocused();
  // Open with the keyboard, then "more like this".
  await page.keyboard.press('Enter');
  await expect(dialog).toBeVisible();
  const [request] = await Promise.all([page.waitForRequest(isSimilar), dialog.getByRole('button', { name: '이것과 닮은 상품 더 보기' }).click()]);
  const url = new URL(request.url());
  expect([decodeURIComponent(url.pathname), url.searchParams.get('k'), url.searchParams.get('category')], 'similar path, k and category')
    .toEqual([`/api/v1/items/${firstId}/similar`, '12', 'auto']);
  await waitForCards(page, 12);
  const heading = page.locator('#results-heading');
  await expect(heading).toContainText(firstId);
  expect(new URL(page.url()).searchParams.get('similar'), 'URL after more like this').toBe(firstId);
  // New results: the item itself is left out, and the list differs from the photo's.
  const similarIds = await cardIds(page);
  expect(similarIds, 'the item itself is not among its similar items').not.toContain(firstId);
  expect(similarIds, 'the similar results differ from the photo results').not.toEqual(uploadIds);

  // Back: the uploaded-photo search comes back from memory, without uploading again.
  let uploads = 0;
  page.on('request', (r) => void (isSearch(r) && uploads++));
  await page.goBack();
  await expect(page).toHaveURL(uploadUrl);
  await expect(heading).toContainText('내 사진과 닮은 상품');
  await waitForCards(page, 12);
  expect(uploads, 'uploads after going back').toBe(0);
  await page.goForward();
  await expect(heading).toContainText(firstId);
  await waitForCards(page, 12);
  // A ?similar= link works on its own (a reload or a bookmark).
  await page.reload();
  await expect(heading).toContainText(firstId);
  await waitForCards(page, 12);
});
