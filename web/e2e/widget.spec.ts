// widget.js on a shop's page. Last by file name (files run in alphabetical order): it gives every
// item a title and a link, which the page's tests before it do not expect.
import { CATEGORIES, expect, listItems, patchItem, PER_CATEGORY, shot, test } from './fixtures';

test('widget.js on a shop page of another origin: linked look-alikes with titles', async ({ page, request, shop }) => {
  // Titles and product links for every item, as a shop would set them.
  const items = await listItems(request, 'limit=200');
  expect(items, 'listed items').toHaveLength(CATEGORIES.length * PER_CATEGORY);
  for (const { id } of items) await patchItem(request, id, { title: `Product ${id}`, url: `${shop.origin}/product.html?item=${id}` });
  const item = items.find((it) => it.category === 'dress')!.id;
  await page.goto(`${shop.origin}/product.html?item=${item}`);
  const ready = page.locator('#row[data-lookalike-state="ready"]');
  await expect(ready).toBeVisible();
  // Playwright's CSS locators pierce the open shadow root the widget renders into.
  const links = page.locator('#row li a');
  await expect(links, 'six look-alikes by default').toHaveCount(6);
  const heading = page.locator('#row h2');
  await expect(heading).toHaveText('You may also like');
  await expect(heading, "the shop's CSS does not reach into the widget").not.toHaveCSS('color', 'rgb(255, 0, 0)');
  for (const link of await links.all()) {
    const href = (await link.getAttribute('href')) ?? '';
    expect(href.startsWith(`${shop.origin}/product.html?item=`) && !href.endsWith(`=${item}`), `link ${href}`).toBe(true);
    const title = `Product ${href.split('item=')[1]}`;
    await expect(link.locator('.t'), 'caption is the title').toHaveText(title);
    await expect(link.locator('img'), 'alt is the title').toHaveAttribute('alt', title);
    await expect.poll(() => link.locator('img').evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0), 'image loaded').toBe(true);
  }
  await expect(page.locator('#three li a'), 'data-lookalike-k="3"').toHaveCount(3);
  await expect(page.locator('#three h2'), 'an empty heading attribute hides the heading').toHaveCount(0);
  await expect(page.locator('#unknown')).toHaveAttribute('data-lookalike-state', 'error');
  await expect(page.locator('#unknown li'), 'an unknown item renders nothing').toHaveCount(0);
  // Following a look-alike opens the shop's page for that item, with its own row.
  await links.first().click();
  await expect(page, 'navigated to another product').not.toHaveURL(new RegExp(`=${item}$`));
  await expect(ready).toBeVisible();
  await shot(page, 'widget');
});
