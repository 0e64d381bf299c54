import { useEffect, useId, useRef, useState } from 'react';
import { clampColorWeight, MAX_RESULTS, MIN_RESULTS, type Category, type Facets, type Filters } from '../api';
import { useI18n } from '../i18n';
import { FilterFields } from './FilterFields';

export interface Options {
  k: number;
  category: string;
  colorWeight: number;
  filters?: Filters;
}

interface Props {
  options: Options;
  categories: Category[] | null;
  categoriesFailed: boolean;
  /** What the catalog can be filtered by; null while unknown (no filter fields then). */
  facets?: Facets | null;
  onChange: (options: Options) => void;
}

/** Typing waits this long before the count is used, so "30" does not search for 3 first. */
export const COUNT_DEBOUNCE_MS = 500;
/** Dragging the colour slider searches once it rests this long, not at every step. */
export const COLOR_DEBOUNCE_MS = 300;

export function parseCount(text: string): number | null {
  if (!/^\s*\d+\s*$/.test(text)) return null;
  const n = Number(text);
  return n >= MIN_RESULTS && n <= MAX_RESULTS ? n : null;
}

export function OptionsBar({ options, categories, categoriesFailed, facets = null, onChange }: Props) {
  const { t, categoryName, formatNumber, formatPercent } = useI18n();
  const id = useId();
  const [countText, setCountText] = useState(String(options.k));
  const [colorWeight, setColorWeight] = useState(options.colorWeight);
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const colorTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const latest = useRef({ options, onChange });
  latest.current = { options, onChange };

  // Follow outside changes (e.g. options restored) unless the field is being edited.
  useEffect(() => {
    setCountText((text) => (parseCount(text) === options.k ? text : String(options.k)));
  }, [options.k]);

  useEffect(() => setColorWeight(options.colorWeight), [options.colorWeight]);

  useEffect(() => () => {
    if (timer.current) clearTimeout(timer.current);
    if (colorTimer.current) clearTimeout(colorTimer.current);
  }, []);

  const commitColorWeight = (value: number, delay: number) => {
    if (colorTimer.current) clearTimeout(colorTimer.current);
    const w = clampColorWeight(value);
    setColorWeight(w);
    const apply = () => {
      if (w !== latest.current.options.colorWeight) latest.current.onChange({ ...latest.current.options, colorWeight: w });
    };
    if (delay <= 0) apply();
    else colorTimer.current = setTimeout(apply, delay);
  };

  const valid = parseCount(countText) !== null;

  const commitCount = (text: string, delay: number) => {
    if (timer.current) clearTimeout(timer.current);
    const k = parseCount(text);
    if (k === null || k === latest.current.options.k) return;
    const apply = () => latest.current.onChange({ ...latest.current.options, k });
    if (delay <= 0) apply();
    else timer.current = setTimeout(apply, delay);
  };

  return (
    <section className="panel options-panel" aria-labelledby={`${id}-heading`}>
      <h2 id={`${id}-heading`} className="panel-title">
        {t('options.heading')}
      </h2>
      <form
        className="options-form"
        onSubmit={(e) => {
          e.preventDefault();
          commitCount(countText, 0);
        }}
      >
        <div className="field">
          <label className="field-label" htmlFor={`${id}-count`}>
            {t('options.count')}
          </label>
          <input
            id={`${id}-count`}
            type="number"
            inputMode="numeric"
            min={MIN_RESULTS}
            max={MAX_RESULTS}
            step={1}
            value={countText}
            aria-invalid={!valid}
            aria-describedby={`${id}-count-hint`}
            data-testid="count-input"
            onChange={(e) => {
              const text = e.currentTarget.value;
              setCountText(text);
              commitCount(text, COUNT_DEBOUNCE_MS);
            }}
            onBlur={() => commitCount(countText, 0)}
          />
          <span id={`${id}-count-hint`} className={valid ? 'field-hint' : 'field-hint invalid'} role={valid ? undefined : 'alert'}>
            {valid ? t('options.countHint', { max: MAX_RESULTS }) : t('options.countInvalid', { max: MAX_RESULTS })}
          </span>
        </div>
        <div className="field">
          <label className="field-label" htmlFor={`${id}-category`}>
            {t('options.category')}
          </label>
          <select
            id={`${id}-category`}
            value={options.category}
            data-testid="category-select"
            onChange={(e) => onChange({ ...options, category: e.currentTarget.value })}
          >
            <option value="auto">{t('options.category.auto')}</option>
            <option value="all">{t('options.category.all')}</option>
            {categories && categories.length > 0 && (
              <optgroup label={t('options.category.group')}>
                {categories.map((c) => (
                  <option key={c.name} value={c.name}>
                    {t('options.category.count', { name: categoryName(c.name), count: formatNumber(c.count) })}
                  </option>
                ))}
              </optgroup>
            )}
            {/* A remembered category the list does not have (yet): keep it selectable. */}
            {options.category !== 'auto' &&
              options.category !== 'all' &&
              !categories?.some((c) => c.name === options.category) && (
                <option value={options.category}>{categoryName(options.category)}</option>
              )}
          </select>
          {categoriesFailed && <span className="field-hint invalid">{t('options.categoriesFailed')}</span>}
        </div>
        <div className="field">
          <label className="field-label" htmlFor={`${id}-color`}>
            {t('options.color')}
          </label>
          <div className="range-row">
            <input
              id={`${id}-color`}
              type="range"
              min={0}
              max={1}
              step={0.05}
              value={colorWeight}
              aria-describedby={`${id}-color-hint`}
              aria-valuetext={colorWeight > 0 ? formatPercent(colorWeight) : t('options.colorOff')}
              data-testid="color-weight"
              onChange={(e) => commitColorWeight(Number(e.currentTarget.value), COLOR_DEBOUNCE_MS)}
              onPointerUp={(e) => commitColorWeight(Number(e.currentTarget.value), 0)}
            />
            <output htmlFor={`${id}-color`} className="range-value" data-testid="color-weight-value">
              {colorWeight > 0 ? formatPercent(colorWeight) : t('options.colorOff')}
            </output>
          </div>
          <span id={`${id}-color-hint`} className="field-hint">
            {t('options.colorHint')}
          </span>
        </div>
        {facets && (
          <FilterFields
            facets={facets}
            filters={options.filters ?? {}}
            onChange={(filters) => onChange({ ...latest.current.options, filters })}
          />
        )}
      </form>
    </section>
  );
}
