import { screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import type { QueryInfo } from '../api';
import { renderWithI18n } from '../test/render';
import { ResultBanner } from './ResultBanner';

const query: QueryInfo = { category: 'coat', confidence: 0.934, probabilities: {}, searched: 'coat', fallback_used: false };

describe('ResultBanner', () => {
  it('shows the predicted category, the confidence and the timings', () => {
    renderWithI18n(<ResultBanner query={query} timings={{ model: 95.1, search: 0.24, total: 96 }} />);
    const banner = screen.getByTestId('banner');
    expect(banner).toHaveTextContent('Looks like: Coat');
    expect(banner).toHaveTextContent('93% sure');
    expect(banner).toHaveTextContent('Searched in Coat');
    expect(screen.getByTestId('timings')).toHaveTextContent('model 95 ms · search 0.2 ms · total 96 ms');
  });

  it('names the model version that answered', () => {
    const { unmount } = renderWithI18n(<ResultBanner query={{ ...query, model_version: 3 }} timings={{ total: 96 }} />);
    expect(screen.getByTestId('timings')).toHaveTextContent('trained model v3 · total 96 ms');
    unmount();
    renderWithI18n(<ResultBanner query={{ ...query, model_version: 0 }} timings={{ total: 96 }} />, 'ko');
    expect(screen.getByTestId('timings')).toHaveTextContent('기본 모델 · 전체 96ms');
  });

  it('says all categories were searched when the server fell back', () => {
    renderWithI18n(<ResultBanner query={{ ...query, confidence: 0.3, searched: 'all', fallback_used: true }} timings={{}} />, 'ko');
    expect(screen.getByTestId('searched')).toHaveTextContent('모든 카테고리에서 검색함');
    expect(screen.getByText('카테고리가 확실하지 않아 모든 카테고리에서 검색했습니다.')).toBeInTheDocument();
    expect(screen.queryByTestId('timings')).toBeNull();
  });

  it('copes with no predicted category', () => {
    renderWithI18n(<ResultBanner query={{ ...query, category: null, searched: 'all' }} timings={{ total: 1 }} />);
    expect(screen.getByTestId('banner')).toHaveTextContent('Category not recognised');
    expect(screen.getByTestId('searched')).toHaveTextContent('Searched all categories');
  });
});
