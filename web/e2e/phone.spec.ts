// The page on a phone-sized screen.
import { cards, expect, SECOND_PHOTO, shot, test, upload, waitForCards } from './fixtures';

test.use({ viewport: { width: 390, height: 844 } });

test('phone viewport (390 px): no sideways scrolling, results in two columns', async ({ page }) => {
  await shot(page, 'phone-empty', true);
  await upload(page, SECOND_PHOTO);
  await waitForCards(page, 12);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow, 'page wider than the phone').toBeLessThanOrEqual(0);
  const lefts = await cards(page).evaluateAll((els) => [...new Set(els.map((e) => Math.round(e.getBoundingClientRect().left)))]);
  expect(lefts, 'card columns on a phone').toHaveLength(2);
  await shot(page, 'phone-results', true);
  await page.locator('[data-testid="result-card"] button').first().click();
  const dialog = page.getByRole('dialog');
  await expect(dialog).toBeVisible();
  await dialog.locator('img').evaluate((img: HTMLImageElement) => img.decode());
  await shot(page, 'phone-dialog');
});
