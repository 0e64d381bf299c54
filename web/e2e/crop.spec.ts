// The crop box: what it sends is a crop in the photo's own pixels.
import { expect, isSearch, lastSearchOptions, QUERY_PHOTO, shot, test, upload, waitForCards } from './fixtures';

test('crop then search: the request carries a crop in source pixels', async ({ page }) => {
  await upload(page, QUERY_PHOTO);
  await waitForCards(page, 12);
  const size = page.getByTestId('crop-size');
  const natural = /\(원본 (\d+) × (\d+)px\)/;
  await expect(size, 'natural size shown').toHaveText(natural);
  const [, W, H] = ((await size.textContent()) ?? '').match(natural)!.map(Number) as [number, number, number];
  await page.getByLabel('확대').fill('2');
  // The cropper reports the new area once it has settled.
  await expect(size).not.toHaveAttribute('data-crop', '');
  // Move the photo under the box with the keyboard (the crop area is focusable).
  await page.getByLabel(/자르기 영역/).focus();
  for (let i = 0; i < 5; i++) await page.keyboard.press('ArrowRight');
  await page.waitForTimeout(300);
  await Promise.all([page.waitForRequest(isSearch), page.getByRole('button', { name: '선택 영역으로 검색' }).click()]);
  const { crop } = await lastSearchOptions(page);
  expect(crop, 'a crop was sent').toBeTruthy();
  const { x, y, w, h } = crop!;
  for (const v of [x, y, w, h]) expect(Number.isInteger(v), `crop ${JSON.stringify(crop)} in integers`).toBe(true);
  expect(x >= 0 && y >= 0 && x + w <= W && y + h <= H, `crop ${JSON.stringify(crop)} inside ${W}x${H}`).toBe(true);
  expect(Math.abs(w - W / 2) <= 2 && Math.abs(h - H / 2) <= 2, `zoom 2 gives half the photo: ${JSON.stringify(crop)} of ${W}x${H}`).toBe(true);
  await waitForCards(page, 12);
  await expect(page.locator('#results-heading')).toContainText('내 사진의 선택 영역과 닮은 상품');
  await shot(page, 'desktop-crop');
});
