import { screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import type { SearchHit } from '../api';
import { coatHit } from '../test/fixtures';
import { renderWithI18n } from '../test/render';
import { ItemDialog, safeUrl } from './ItemDialog';

const hit = coatHit;

describe('ItemDialog', () => {
  it('shows the item, its metadata and a link', () => {
    renderWithI18n(<ItemDialog hit={hit} onClose={() => {}} onMoreLikeThis={() => {}} />);
    const dialog = screen.getByRole('dialog', { name: 'Wool coat' });
    expect(dialog).toHaveAttribute('aria-modal', 'true');
    expect(dialog).toHaveTextContent('Coat');
    expect(dialog).toHaveTextContent('62%'); // the catalog-scaled similarity, not the cosine
    expect(dialog).toHaveTextContent('0.874'); // the cosine, labelled as such
    expect(dialog).toHaveTextContent('Cosine similarity');
    expect(dialog).toHaveTextContent('59.9');
    expect(dialog).toHaveTextContent('navy');
    expect(screen.getByRole('link', { name: 'View in the shop' })).toHaveAttribute('href', 'https://shop.example/coat-12');
    expect(screen.getByRole('img')).toHaveAttribute('src', '/api/v1/items/coat-12/image');
  });

  it('moves focus in, keeps Tab inside, and closes on Escape', async () => {
    const onClose = vi.fn();
    const user = userEvent.setup();
    renderWithI18n(<ItemDialog hit={hit} onClose={onClose} onMoreLikeThis={() => {}} />);
    const close = screen.getByRole('button', { name: 'Close' });
    expect(close).toHaveFocus();
    await user.tab();
    expect(screen.getByRole('button', { name: 'More like this' })).toHaveFocus();
    await user.tab();
    expect(screen.getByRole('link', { name: 'View in the shop' })).toHaveFocus();
    await user.tab();
    expect(close).toHaveFocus();
    await user.tab({ shift: true });
    expect(screen.getByRole('link', { name: 'View in the shop' })).toHaveFocus();
    await user.keyboard('{Escape}');
    expect(onClose).toHaveBeenCalledTimes(1);
  });

  it('searches by the item with "more like this"', async () => {
    const onMore = vi.fn();
    renderWithI18n(<ItemDialog hit={hit} onClose={() => {}} onMoreLikeThis={onMore} />, 'ko');
    await userEvent.click(screen.getByRole('button', { name: '이것과 닮은 상품 더 보기' }));
    expect(onMore).toHaveBeenCalledWith(hit);
  });

  it('shows no link for a missing or unsafe URL, and the id when there is no title', () => {
    const plain = { ...hit, metadata: { title: '', price: null, url: 'javascript:alert(1)', attributes: {} } };
    renderWithI18n(<ItemDialog hit={plain} onClose={() => {}} onMoreLikeThis={() => {}} />);
    expect(screen.queryByRole('link')).toBeNull();
    expect(screen.getByRole('dialog', { name: 'coat-12' })).not.toHaveTextContent('Price');
    expect(safeUrl('')).toBeNull();
    expect(safeUrl('http://a.example/x')).toBe('http://a.example/x');
  });

  it('falls back to the cosine when the server sends no similarity', () => {
    const old: SearchHit = { ...hit, similarity: undefined };
    renderWithI18n(<ItemDialog hit={old} onClose={() => {}} onMoreLikeThis={() => {}} />);
    expect(screen.getByRole('dialog', { name: 'Wool coat' })).toHaveTextContent('87%');
  });
});
