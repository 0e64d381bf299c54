import type { QueryInfo, Timings } from '../api';
import { useI18n } from '../i18n';

interface Props {
  query: QueryInfo;
  timings: Partial<Timings>;
}

/** What the classifier thought the photo shows, where it searched, and how long it took. */
export function ResultBanner({ query, timings }: Props) {
  const { t, categoryName, formatPercent, formatNumber } = useI18n();
  const searchedAll = query.fallback_used || query.searched === 'all';
  return (
    <div className="banner" data-testid="banner" data-category={query.category ?? ''} data-fallback={String(query.fallback_used)}>
      <div className="banner-main">
        {query.category ? (
          <>
            <span className="banner-category">{t('banner.predicted', { category: categoryName(query.category) })}</span>
            <span className="confidence" aria-hidden="true">
              <span style={{ width: `${Math.max(0, Math.min(1, query.confidence)) * 100}%` }} />
            </span>
            <span className="banner-confidence">{t('banner.confidence', { value: formatPercent(query.confidence) })}</span>
          </>
        ) : (
          <span className="banner-category">{t('banner.unknown')}</span>
        )}
        <span className={searchedAll ? 'chip chip-all' : 'chip'} data-testid="searched">
          {searchedAll ? t('banner.searchedAll') : t('banner.searchedIn', { category: categoryName(query.searched) })}
        </span>
      </div>
      {query.fallback_used && <p className="banner-note">{t('banner.fallback')}</p>}
      {timings.total !== undefined && (
        <p className="timings" data-testid="timings">
          <span className="visually-hidden">{t('timings.label')}: </span>
          {[
            query.model_version === undefined
              ? null
              : query.model_version === 0
                ? t('timings.frozenModel')
                : t('timings.trainedModel', { version: String(query.model_version) }),
            timings.model !== undefined ? t('timings.model', { ms: formatNumber(timings.model, 0) }) : null,
            timings.search !== undefined ? t('timings.search', { ms: formatNumber(timings.search, 1) }) : null,
            t('timings.total', { ms: formatNumber(timings.total, 0) }),
          ]
            .filter(Boolean)
            .join(' · ')}
        </p>
      )}
    </div>
  );
}
