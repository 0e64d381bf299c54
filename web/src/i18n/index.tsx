import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { LANGUAGES, MESSAGES, type Lang, type MessageKey } from './messages';
import { loadLang, saveLang } from '../storage';

export type { Lang, MessageKey };
export { LANGUAGES };

export type Params = Record<string, string | number>;

export function translate(lang: Lang, key: MessageKey, params?: Params): string {
  const text = MESSAGES[lang][key] ?? MESSAGES.en[key] ?? key;
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name: string) => (name in params ? String(params[name]) : whole));
}

/** ko when the browser prefers Korean, otherwise en. */
export function detectLang(languages: readonly string[] | undefined, language: string | undefined): Lang {
  const list = languages && languages.length > 0 ? languages : language ? [language] : [];
  for (const l of list) {
    const base = l.toLowerCase().split('-')[0];
    if (base === 'ko') return 'ko';
    if (base === 'en') return 'en';
  }
  return 'en';
}

export interface I18n {
  lang: Lang;
  setLang: (lang: Lang) => void;
  t: (key: MessageKey, params?: Params) => string;
  /** A catalog category in the current language; unknown names are shown as they are. */
  categoryName: (name: string) => string;
  formatPercent: (value: number) => string;
  formatNumber: (value: number, digits?: number) => string;
}

const I18nContext = createContext<I18n | null>(null);

export function I18nProvider({ children, initial }: { children: ReactNode; initial?: Lang }) {
  const [lang, setLangState] = useState<Lang>(
    () => initial ?? loadLang() ?? detectLang(navigator.languages, navigator.language),
  );

  useEffect(() => {
    document.documentElement.lang = lang;
    document.title = `${translate(lang, 'app.title')} · ${translate(lang, 'app.tagline')}`;
  }, [lang]);

  const setLang = useCallback((next: Lang) => {
    setLangState(next);
    saveLang(next);
  }, []);

  const value = useMemo<I18n>(() => {
    const locale = lang === 'ko' ? 'ko-KR' : 'en-US';
    const percent = new Intl.NumberFormat(locale, { style: 'percent', maximumFractionDigits: 0 });
    return {
      lang,
      setLang,
      t: (key, params) => translate(lang, key, params),
      categoryName: (name) => {
        const key = `category.${name}` as MessageKey;
        return key in MESSAGES[lang] ? MESSAGES[lang][key] : name;
      },
      formatPercent: (v) => percent.format(Math.max(0, Math.min(1, v))),
      formatNumber: (v, digits = 0) =>
        new Intl.NumberFormat(locale, { maximumFractionDigits: digits, minimumFractionDigits: 0 }).format(v),
    };
  }, [lang, setLang]);

  return <I18nContext.Provider value={value}>{children}</I18nContext.Provider>;
}

export function useI18n(): I18n {
  const ctx = useContext(I18nContext);
  if (!ctx) throw new Error('useI18n outside <I18nProvider>');
  return ctx;
}
