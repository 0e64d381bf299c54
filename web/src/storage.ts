// What the page remembers across reloads (localStorage). Every access is guarded: storage can be
// disabled, full, or hold a value written by an older version of the page.
import { clampColorWeight, clampResults, cleanFilters, type Filters } from './api';
import type { Lang } from './i18n/messages';

const OPTIONS_KEY = 'lookalike.options.v1';
const LANG_KEY = 'lookalike.lang';

export interface StoredOptions {
  k: number;
  category: string;
  /** 0..1, the colour slider (0: rank by look alone). */
  colorWeight: number;
  /** Price range and attribute values (empty: no filter). */
  filters?: Filters;
}

export const DEFAULT_OPTIONS: StoredOptions = { k: 12, category: 'auto', colorWeight: 0, filters: {} };

function read(key: string): string | null {
  try {
    return window.localStorage.getItem(key);
  } catch {
    return null;
  }
}

function write(key: string, value: string): void {
  try {
    window.localStorage.setItem(key, value);
  } catch {
    // Private mode or a full quota: the page still works, it just forgets.
  }
}

export function loadOptions(): StoredOptions {
  const text = read(OPTIONS_KEY);
  if (!text) return { ...DEFAULT_OPTIONS, filters: {} };
  try {
    const v = JSON.parse(text) as Partial<StoredOptions>;
    return {
      k: typeof v.k === 'number' ? clampResults(v.k) : DEFAULT_OPTIONS.k,
      category: typeof v.category === 'string' && v.category ? v.category : DEFAULT_OPTIONS.category,
      colorWeight: clampColorWeight(v.colorWeight),
      filters: cleanFilters(v.filters),
    };
  } catch {
    return { ...DEFAULT_OPTIONS, filters: {} };
  }
}

export function saveOptions(options: StoredOptions): void {
  write(
    OPTIONS_KEY,
    JSON.stringify({ k: options.k, category: options.category, colorWeight: options.colorWeight, filters: options.filters }),
  );
}

export function loadLang(): Lang | null {
  const v = read(LANG_KEY);
  return v === 'ko' || v === 'en' ? v : null;
}

export function saveLang(lang: Lang): void {
  write(LANG_KEY, lang);
}
