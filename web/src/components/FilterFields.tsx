import { useEffect, useId, useRef, useState } from 'react';
import { hasFilters, type AttributeValue, type Facets, type Filters } from '../api';
import { useI18n } from '../i18n';

interface Props {
  facets: Facets;
  filters: Filters;
  onChange: (filters: Filters) => void;
}

/** Typing a price waits this long before it is used, so "150" does not search for 1 and 15 first. */
export const PRICE_DEBOUNCE_MS = 600;

/** A price field's text as a price: empty is "no bound", anything else must be a number >= 0. */
export function parsePrice(text: string): number | undefined | null {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  const n = Number(trimmed);
  return Number.isFinite(n) && n >= 0 ? n : null;
}

const priceText = (v: number | undefined) => (v === undefined ? '' : String(v));

/**
 * The catalog's filters: a price range (when items have prices) and one choice per attribute
 * (its most common values, with how many items have each). Shown only when the catalog has any.
 */
export function FilterFields({ facets, filters, onChange }: Props) {
  const { t, formatNumber } = useI18n();
  const id = useId();
  const [minText, setMinText] = useState(priceText(filters.priceMin));
  const [maxText, setMaxText] = useState(priceText(filters.priceMax));
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const latest = useRef({ filters, onChange });
  latest.current = { filters, onChange };

  useEffect(() => setMinText(priceText(filters.priceMin)), [filters.priceMin]);
  useEffect(() => setMaxText(priceText(filters.priceMax)), [filters.priceMax]);
  useEffect(() => () => {
    if (timer.current) clearTimeout(timer.current);
  }, []);

  const min = parsePrice(minText);
  const max = parsePrice(maxText);
  const priceValid = min !== null && max !== null && !(min !== undefined && max !== undefined && min > max);

  const commitPrices = (nextMin: string, nextMax: string, delay: number) => {
    if (timer.current) clearTimeout(timer.current);
    const lo = parsePrice(nextMin);
    const hi = parsePrice(nextMax);
    if (lo === null || hi === null || (lo !== undefined && hi !== undefined && lo > hi)) return;
    const apply = () => {
      const current = latest.current.filters;
      if (lo === current.priceMin && hi === current.priceMax) return;
      const next: Filters = { ...current, priceMin: lo, priceMax: hi };
      if (lo === undefined) delete next.priceMin;
      if (hi === undefined) delete next.priceMax;
      latest.current.onChange(next);
    };
    if (delay <= 0) apply();
    else timer.current = setTimeout(apply, delay);
  };

  const chooseAttribute = (name: string, encoded: string) => {
    const attributes = { ...(filters.attributes ?? {}) };
    if (encoded === '') delete attributes[name];
    else attributes[name] = JSON.parse(encoded) as AttributeValue;
    const next: Filters = { ...filters, attributes };
    if (Object.keys(attributes).length === 0) delete next.attributes;
    onChange(next);
  };

  if (!facets.price && facets.attributes.length === 0) return null;
  return (
    <fieldset className="field filter-fields" data-testid="filters">
      <legend className="field-label">{t('options.filters')}</legend>
      {facets.price && (
        <div className="price-row">
          {(
            [
              ['min', minText, setMinText, t('options.priceMin'), facets.price.min],
              ['max', maxText, setMaxText, t('options.priceMax'), facets.price.max],
            ] as const
          ).map(([bound, text, setText, label, placeholder]) => (
            <label key={bound} className="price-field">
              <span className="field-hint">{label}</span>
              <input
                type="number"
                inputMode="decimal"
                min={0}
                step="any"
                value={text}
                placeholder={String(placeholder)}
                aria-invalid={!priceValid}
                aria-describedby={`${id}-price-hint`}
                data-testid={`price-${bound}`}
                onChange={(e) => {
                  const value = e.currentTarget.value;
                  setText(value);
                  if (bound === 'min') commitPrices(value, maxText, PRICE_DEBOUNCE_MS);
                  else commitPrices(minText, value, PRICE_DEBOUNCE_MS);
                }}
                onBlur={() => commitPrices(minText, maxText, 0)}
              />
            </label>
          ))}
          <span
            id={`${id}-price-hint`}
            className={priceValid ? 'field-hint' : 'field-hint invalid'}
            role={priceValid ? undefined : 'alert'}
          >
            {priceValid
              ? t('options.priceHint', {
                  min: formatNumber(facets.price.min, 2),
                  max: formatNumber(facets.price.max, 2),
                  count: formatNumber(facets.price.items),
                })
              : t('options.priceInvalid')}
          </span>
        </div>
      )}
      {facets.attributes.map((a) => {
        const chosen = filters.attributes?.[a.name];
        const chosenKey = chosen === undefined ? '' : JSON.stringify(chosen);
        const listed = a.values.some((v) => JSON.stringify(v.value) === chosenKey);
        return (
          <label key={a.name} className="attribute-field">
            <span className="field-hint">{a.name}</span>
            <select
              value={chosenKey}
              data-testid={`attribute-${a.name}`}
              onChange={(e) => chooseAttribute(a.name, e.currentTarget.value)}
            >
              <option value="">{t('options.attributeAny')}</option>
              {a.values.map((v) => (
                <option key={JSON.stringify(v.value)} value={JSON.stringify(v.value)}>
                  {t('options.attributeValue', { value: String(v.value), count: formatNumber(v.count) })}
                </option>
              ))}
              {/* A remembered value the list does not have (any more): keep it selectable. */}
              {chosenKey !== '' && !listed && <option value={chosenKey}>{String(chosen)}</option>}
            </select>
          </label>
        );
      })}
      {hasFilters(filters) && (
        <button type="button" className="btn btn-ghost btn-small" data-testid="clear-filters" onClick={() => onChange({})}>
          {t('options.clearFilters')}
        </button>
      )}
    </fieldset>
  );
}
