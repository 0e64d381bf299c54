import { screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import type { SearchHit } from '../api';
import { renderWithI18n } from '../test/render';
import { ResultCard } from './ResultCard';

const hit: SearchHit = {
  id: 'coat-12',
  score: 0.874,
  similarity: 0.62,
  category: 'coat',
  file_name: '12.jpg',
  image_url: '/api/v1/items/coat-12/image',
  width: 125,
  height: 160,
  metadata: { title: 'Wool coat', price: null, url: '', attributes: {} },
};

describe('ResultCard', () => {
  it('marks the very product of the photo as the same item, for eyes and screen readers', () => {
    renderWithI18n(
      <ul>
        <ResultCard hit={{ ...hit, same_item: true }} onOpen={() => {}} />
      </ul>,
    );
    expect(screen.getByTestId('same-item')).toHaveTextContent('Same item');
    expect(screen.getByRole('button')).toHaveAccessibleName('Details for Wool coat (Coat, 62% similar) (Same item)');
  });

  it('shows no mark on a look-alike, nor when the server sends none', () => {
    renderWithI18n(
      <ul>
        <ResultCard hit={{ ...hit, same_item: false }} onOpen={() => {}} />
        <ResultCard hit={{ ...hit, id: 'coat-13' }} onOpen={() => {}} />
      </ul>,
    );
    expect(screen.queryByTestId('same-item')).toBeNull();
    expect(screen.getAllByRole('button')[0]).toHaveAccessibleName('Details for Wool coat (Coat, 62% similar)');
  });

  it('says it in Korean too', () => {
    renderWithI18n(
      <ul>
        <ResultCard hit={{ ...hit, same_item: true }} onOpen={() => {}} />
      </ul>,
      'ko',
    );
    expect(screen.getByTestId('same-item')).toHaveTextContent('같은 상품');
  });
});
