import { screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { coatHit } from '../test/fixtures';
import { renderWithI18n } from '../test/render';
import { ResultCard } from './ResultCard';

const hit = coatHit;

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

  it('shows how close the colours are when the search weighed colour, and nothing otherwise', () => {
    renderWithI18n(
      <ul>
        <ResultCard hit={{ ...hit, color_similarity: 0.84 }} onOpen={() => {}} />
        <ResultCard hit={{ ...hit, id: 'coat-13' }} onOpen={() => {}} />
      </ul>,
    );
    expect(screen.getAllByTestId('color-similarity')).toHaveLength(1);
    expect(screen.getByTestId('color-similarity')).toHaveTextContent('Colour 84%');
  });

  it('says how many copies of the photo it stands for, and nothing when there are none', () => {
    renderWithI18n(
      <ul>
        <ResultCard hit={{ ...hit, hidden_copies: 2, copy_ids: ['coat-7', 'coat-9'] }} onOpen={() => {}} />
        <ResultCard hit={{ ...hit, id: 'coat-13' }} onOpen={() => {}} />
      </ul>,
    );
    expect(screen.getAllByTestId('hidden-copies')).toHaveLength(1);
    expect(screen.getByTestId('hidden-copies')).toHaveTextContent('+2 similar copies');
    expect(screen.getByTestId('hidden-copies')).toHaveAttribute('title', expect.stringContaining('coat-7, coat-9'));
    expect(screen.getAllByRole('button')[0]).toHaveAccessibleName(
      'Details for Wool coat (Coat, 62% similar) (+2 similar copies)',
    );
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
