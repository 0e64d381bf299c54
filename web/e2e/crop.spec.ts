// The crop box: any shape by mouse or keyboard; what it sends is a crop in the photo's own pixels.
import { expect, isSearch, lastSearchOptions, QUERY_PHOTO, shot, test, upload, waitForCards } from './fixtures';

test('a free-shape crop by mouse and keyboard, then search: the request carries it in source pixels', async ({ page }) => {
  await upload(page, QUERY_PHOTO);
  await waitForCards(page, 12);
  const size = page.getByTestId('crop-size');
  const natural = /\(원본 (\d+) × (\d+)px\)/;
  await expect(size, 'natural size shown').toHaveText(natural);
  const [, W, H] = ((await size.textContent()) ?? '').match(natural)!.map(Number) as [number, number, number];
  await expect(page.getByLabel('상자 모양'), 'a free shape by default').toHaveValue('free');
  const cropOf = async () => ((await size.getAttribute('data-crop')) ?? '').split(',').map(Number);

  // Drag the bottom right corner to the photo's middle, sideways only: half as wide, as tall.
  const photo = (await page.getByTestId('crop-stage').locator('img').boundingBox())!;
  const corner = (await page.getByLabel('자르기 상자의 오른쪽 아래 모서리').boundingBox())!;
  const grip = { x: corner.x + corner.width / 2, y: corner.y + corner.height / 2 };
  await page.mouse.move(grip.x, grip.y);
  await page.mouse.down();
  await page.mouse.move(photo.x + photo.width / 2, grip.y, { steps: 8 });
  await page.mouse.up();
  await expect(size).not.toHaveAttribute('data-crop', '');
  const [x0, y0, w0, h0] = await cropOf();
  expect([x0, y0, h0], 'the corner drag keeps the top left and the height').toEqual([0, 0, H]);
  expect(Math.abs(w0 - W / 2), `half as wide: ${w0} of ${W}`).toBeLessThanOrEqual(2);

  // The arrow keys move the focused box (Shift: 10 screen px) and resize it from a focused edge.
  await page.getByLabel('자르기 상자: 끌거나 화살표 키로 옮기세요').focus();
  for (let i = 0; i < 2; i++) await page.keyboard.press('Shift+ArrowRight');
  await expect.poll(async () => (await cropOf())[0], 'moved right').toBeGreaterThan(0);
  await page.getByLabel('자르기 상자의 위쪽 가장자리').focus();
  for (let i = 0; i < 3; i++) await page.keyboard.press('Shift+ArrowDown');
  await expect.poll(async () => (await cropOf())[1], 'top edge lowered').toBeGreaterThan(0);
  const shown = await cropOf();
  expect(shown[2], 'moving keeps the width').toBe(w0);
  expect(shown[1] + shown[3], 'the bottom edge stays').toBe(H);
  await shot(page, 'desktop-crop-box');

  await Promise.all([page.waitForRequest(isSearch), page.getByRole('button', { name: '선택 영역으로 검색' }).click()]);
  const { crop } = await lastSearchOptions(page);
  expect(crop, 'the crop shown is the crop sent').toEqual({ x: shown[0], y: shown[1], w: shown[2], h: shown[3] });
  const { x, y, w, h } = crop!;
  for (const v of [x, y, w, h]) expect(Number.isInteger(v), `crop ${JSON.stringify(crop)} in integers`).toBe(true);
  expect(x >= 0 && y >= 0 && x + w <= W && y + h <= H, `crop ${JSON.stringify(crop)} inside ${W}x${H}`).toBe(true);
  await waitForCards(page, 12);
  await expect(page.locator('#results-heading')).toContainText('내 사진의 선택 영역과 닮은 상품');
  await shot(page, 'desktop-crop');

  // A preset shape gives the largest centred box of that shape.
  await page.getByLabel('상자 모양').selectOption('square');
  const [, , sw, sh] = await cropOf();
  expect(Math.abs(sw - sh), `a square: ${sw} x ${sh}`).toBeLessThanOrEqual(1);
  expect(Math.max(sw, sh), 'as large as the photo allows').toBeGreaterThanOrEqual(Math.min(W, H) - 1);
});
