import { act, fireEvent, screen } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { renderWithI18n } from '../test/render';
import { COLOR_DEBOUNCE_MS, COUNT_DEBOUNCE_MS, OptionsBar, parseCount } from './OptionsBar';

const categories = [
  { name: 'coat', count: 800 },
  { name: 'shirts', count: 16 },
];

describe('OptionsBar', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('waits for typing to stop before using the count', () => {
    const onChange = vi.fn();
    renderWithI18n(<OptionsBar options={{ k: 12, category: 'auto', colorWeight: 0 }} categories={categories} categoriesFailed={false} onChange={onChange} />);
    const input = screen.getByLabelText('Number of results');
    fireEvent.change(input, { target: { value: '3' } });
    act(() => vi.advanceTimersByTime(200));
    fireEvent.change(input, { target: { value: '30' } });
    act(() => vi.advanceTimersByTime(COUNT_DEBOUNCE_MS - 1));
    expect(onChange).not.toHaveBeenCalled();
    act(() => vi.advanceTimersByTime(1));
    expect(onChange).toHaveBeenCalledTimes(1);
    expect(onChange).toHaveBeenCalledWith({ k: 30, category: 'auto', colorWeight: 0 });
  });

  it('says what is wrong with a count out of range and does not use it', () => {
    const onChange = vi.fn();
    renderWithI18n(<OptionsBar options={{ k: 12, category: 'auto', colorWeight: 0 }} categories={categories} categoriesFailed={false} onChange={onChange} />);
    const input = screen.getByLabelText('Number of results');
    fireEvent.change(input, { target: { value: '501' } });
    fireEvent.blur(input);
    act(() => vi.advanceTimersByTime(COUNT_DEBOUNCE_MS * 2));
    expect(onChange).not.toHaveBeenCalled();
    expect(input).toHaveAttribute('aria-invalid', 'true');
    expect(screen.getByRole('alert')).toHaveTextContent('Enter a whole number from 1 to 500.');
  });

  it('offers automatic, all and each category with its count, and reports a choice at once', () => {
    const onChange = vi.fn();
    renderWithI18n(<OptionsBar options={{ k: 12, category: 'auto', colorWeight: 0 }} categories={categories} categoriesFailed={false} onChange={onChange} />, 'ko');
    const select = screen.getByLabelText('카테고리') as HTMLSelectElement;
    expect(Array.from(select.options).map((o) => o.textContent)).toEqual(['자동 (사진에서 판별)', '모든 카테고리', '코트 (800)', '셔츠 (16)']);
    fireEvent.change(select, { target: { value: 'shirts' } });
    expect(onChange).toHaveBeenCalledWith({ k: 12, category: 'shirts', colorWeight: 0 });
  });

  it('tells when the category list could not be loaded', () => {
    renderWithI18n(<OptionsBar options={{ k: 12, category: 'auto', colorWeight: 0 }} categories={null} categoriesFailed onChange={() => {}} />);
    expect(screen.getByText('Could not load the category list.')).toBeInTheDocument();
  });

  it('searches with the colour weight once the slider rests, and says Off at 0', () => {
    const onChange = vi.fn();
    renderWithI18n(<OptionsBar options={{ k: 12, category: 'auto', colorWeight: 0 }} categories={categories} categoriesFailed={false} onChange={onChange} />);
    const slider = screen.getByLabelText('Match the colour');
    expect(screen.getByTestId('color-weight-value')).toHaveTextContent('Off');
    fireEvent.change(slider, { target: { value: '0.3' } });
    fireEvent.change(slider, { target: { value: '0.5' } });
    act(() => vi.advanceTimersByTime(COLOR_DEBOUNCE_MS - 1));
    expect(onChange).not.toHaveBeenCalled();
    expect(screen.getByTestId('color-weight-value')).toHaveTextContent('50%');
    act(() => vi.advanceTimersByTime(1));
    expect(onChange).toHaveBeenCalledTimes(1);
    expect(onChange).toHaveBeenCalledWith({ k: 12, category: 'auto', colorWeight: 0.5 });
  });

  it('parses counts strictly', () => {
    expect(parseCount('12')).toBe(12);
    expect(parseCount(' 500 ')).toBe(500);
    expect(parseCount('0')).toBeNull();
    expect(parseCount('1.5')).toBeNull();
    expect(parseCount('')).toBeNull();
  });
});
