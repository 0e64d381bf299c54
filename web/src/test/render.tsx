import { render, type RenderOptions } from '@testing-library/react';
import type { ReactElement } from 'react';
import { I18nProvider, type Lang } from '../i18n';

/** Renders inside the language provider (English unless asked otherwise). */
export function renderWithI18n(ui: ReactElement, lang: Lang = 'en', options?: RenderOptions) {
  return render(<I18nProvider initial={lang}>{ui}</I18nProvider>, options);
}
