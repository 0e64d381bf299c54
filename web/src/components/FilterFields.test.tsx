import { act, fireEvent, screen } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Facets } from '../api';
import { renderWithI18n } from '../test/render';
import { FilterFields, parsePrice, PRICE_DEBOUNCE_MS } from './FilterFields';

const facets: Facets = {
  price: { min: 12.5, max: 99, items: 3 },
  attributes: [
    { name: 'colour', items: 3, values: [{ value: 'navy', count: 2 }, { value: 'camel', count: 1 }] },
    { name: 'size', items: 2, values: [{ value: 38, count: 1 }, { value: '38', count: 1 }] },
  ],
};

describe('FilterFields', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('reads prices: empty is no bound, negatives and words are refused', () => {
    expect(parsePrice('')).toBeUndefined();
    expect(parsePrice(' 12.5 ')).toBe(12.5);
    expect(parsePrice('-1')).toBeNull();
    expect(parsePrice('cheap')).toBeNull();
  });

  it('shows nothing for a catalog without prices or attributes', () => {
    const { container } = renderWithI18n(<FilterFields facets={{ price: null, attributes: [] }} filters={{}} onChange={() => {}} />);
    expect(container).toBeEmptyDOMElement();
  });

  it('uses a price once typing stops, and says the catalog range', () => {
    const onChange = vi.fn();
    renderWithI18n(<FilterFields facets={facets} filters={{}} onChange={onChange} />);
    expect(screen.getByTestId('filters')).toHaveTextContent('This catalog: 12.5 to 99 (3 items with a price)');
    fireEvent.change(screen.getByTestId('price-min'), { target: { value: '20' } });
    act(() => vi.advanceTimersByTime(PRICE_DEBOUNCE_MS - 1));
    expect(onChange).not.toHaveBeenCalled();
    act(() => vi.advanceTimersByTime(1));
    expect(onChange).toHaveBeenCalledWith({ priceMin: 20 });
  });

  it('refuses a lowest price above the highest, saying so', () => {
    const onChange = vi.fn();
    renderWithI18n(<FilterFields facets={facets} filters={{ priceMax: 30 }} onChange={onChange} />);
    fireEvent.change(screen.getByTestId('price-min'), { target: { value: '50' } });
    fireEvent.blur(screen.getByTestId('price-min'));
    act(() => vi.advanceTimersByTime(PRICE_DEBOUNCE_MS * 2));
    expect(onChange).not.toHaveBeenCalled();
    expect(screen.getByRole('alert')).toHaveTextContent('The lowest price is above the highest.');
  });

  it('keeps an attribute value typed: 38 and "38" are different choices', () => {
    const onChange = vi.fn();
    renderWithI18n(<FilterFields facets={facets} filters={{ attributes: { colour: 'navy' } }} onChange={onChange} />);
    fireEvent.change(screen.getByTestId('attribute-size'), { target: { value: '"38"' } });
    expect(onChange).toHaveBeenLastCalledWith({ attributes: { colour: 'navy', size: '38' } });
    fireEvent.change(screen.getByTestId('attribute-size'), { target: { value: '38' } });
    expect(onChange).toHaveBeenLastCalledWith({ attributes: { colour: 'navy', size: 38 } });
    fireEvent.change(screen.getByTestId('attribute-colour'), { target: { value: '' } });
    expect(onChange).toHaveBeenLastCalledWith({});
    fireEvent.click(screen.getByTestId('clear-filters'));
    expect(onChange).toHaveBeenLastCalledWith({});
  });

  it('says it in Korean too', () => {
    renderWithI18n(<FilterFields facets={facets} filters={{}} onChange={() => {}} />, 'ko');
    expect(screen.getByTestId('filters')).toHaveTextContent('필터');
    expect(screen.getByTestId('filters')).toHaveTextContent('최저 가격');
  });
});
