import { screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { detectLang, I18nProvider, translate, useI18n } from './i18n';
import { MESSAGES } from './i18n/messages';
import { LanguageSwitch } from './components/LanguageSwitch';
import { render } from '@testing-library/react';

function Probe() {
  const { t, categoryName } = useI18n();
  return (
    <p data-testid="probe">
      {t('options.heading')} / {categoryName('shirts')} / {categoryName('socks')}
    </p>
  );
}

describe('i18n', () => {
  it('has every text in both languages, none empty', () => {
    const keys = Object.keys(MESSAGES.en).sort();
    expect(Object.keys(MESSAGES.ko).sort()).toEqual(keys);
    for (const lang of ['en', 'ko'] as const) {
      for (const key of keys) expect(MESSAGES[lang][key as keyof typeof MESSAGES.en].trim(), `${lang} ${key}`).not.toBe('');
    }
    // Placeholders match between languages.
    for (const key of keys) {
      const names = (text: string) => (text.match(/\{\w+\}/g) ?? []).sort().join();
      expect(names(MESSAGES.ko[key as keyof typeof MESSAGES.en]), key).toBe(names(MESSAGES.en[key as keyof typeof MESSAGES.en]));
    }
  });

  it('fills in values', () => {
    expect(translate('en', 'status.found', { count: 12 })).toBe('12 results');
    expect(translate('ko', 'status.found', { count: 12 })).toBe('결과 12개');
  });

  it('picks Korean only when the browser prefers it', () => {
    expect(detectLang(['ko-KR', 'en-US'], 'ko-KR')).toBe('ko');
    expect(detectLang(['en-GB', 'ko'], 'en-GB')).toBe('en');
    expect(detectLang([], 'ko')).toBe('ko');
    expect(detectLang(['fr-FR'], 'fr-FR')).toBe('en');
    expect(detectLang(undefined, undefined)).toBe('en');
  });

  it('switches every text, sets <html lang> and remembers the choice', async () => {
    render(
      <I18nProvider initial="ko">
        <LanguageSwitch />
        <Probe />
      </I18nProvider>,
    );
    expect(screen.getByTestId('probe')).toHaveTextContent('검색 옵션 / 셔츠 / socks');
    expect(document.documentElement.lang).toBe('ko');
    expect(screen.getByRole('button', { name: '한국어' })).toHaveAttribute('aria-pressed', 'true');
    await userEvent.click(screen.getByRole('button', { name: 'English' }));
    expect(screen.getByTestId('probe')).toHaveTextContent('Search options / Shirt / socks');
    expect(document.documentElement.lang).toBe('en');
    expect(screen.getByRole('button', { name: 'English' })).toHaveAttribute('aria-pressed', 'true');
    expect(localStorage.getItem('lookalike.lang')).toBe('en');
  });

  it('starts from the remembered language', () => {
    localStorage.setItem('lookalike.lang', 'ko');
    render(
      <I18nProvider>
        <Probe />
      </I18nProvider>,
    );
    expect(screen.getByTestId('probe')).toHaveTextContent('검색 옵션');
  });
});
