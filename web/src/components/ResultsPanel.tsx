import type { RefObject } from 'react';
import type { SearchHit } from '../api';
import { useI18n } from '../i18n';
import type { Search, View } from '../useSearches';
import { isRetryable } from '../errors';
import { ErrorMessage } from './ErrorMessage';
import { ResultBanner } from './ResultBanner';
import { itemName } from './ResultCard';
import { ResultsGrid, SkeletonGrid } from './ResultsGrid';

interface Props {
  view: View;
  headingRef: RefObject<HTMLHeadingElement | null>;
  onRetry: () => void;
  onOpen: (hit: SearchHit, opener: HTMLElement) => void;
}

function QueryThumb({ search }: { search: Search }) {
  const src =
    search.source.kind === 'upload'
      ? search.source.photo.url
      : search.source.item?.image_url ?? `/api/v1/items/${encodeURIComponent(search.source.id)}/image`;
  return <img className="query-thumb" src={src} alt="" aria-hidden="true" />;
}

function useHeading(view: View): string {
  const { t } = useI18n();
  if (view.kind !== 'search') return t('results.heading');
  const { source } = view.search;
  if (source.kind === 'similar') return t('results.similarTo', { name: source.item ? itemName(source.item) : source.id });
  return source.crop ? t('results.yourCrop') : t('results.yourPhoto');
}

function EmptyState({ title, text, icon }: { title: string; text: string; icon: 'photo' | 'none' }) {
  return (
    <div className="empty-state" data-testid="empty-state">
      <svg viewBox="0 0 64 64" aria-hidden="true">
        {icon === 'photo' ? (
          <>
            <rect x="8" y="14" width="48" height="36" rx="6" fill="none" stroke="currentColor" strokeWidth="3" />
            <circle cx="24" cy="28" r="5" fill="currentColor" />
            <path d="M12 46l14-14 9 9 7-7 10 10" fill="none" stroke="currentColor" strokeWidth="3" strokeLinejoin="round" />
          </>
        ) : (
          <>
            <circle cx="28" cy="28" r="15" fill="none" stroke="currentColor" strokeWidth="3" />
            <path d="M39 39l13 13M22 28h12" stroke="currentColor" strokeWidth="3" strokeLinecap="round" />
          </>
        )}
      </svg>
      <p className="empty-title">{title}</p>
      <p className="empty-text">{text}</p>
    </div>
  );
}

export function ResultsPanel({ view, headingRef, onRetry, onOpen }: Props) {
  const { t } = useI18n();
  const heading = useHeading(view);
  const search = view.kind === 'search' ? view.search : null;
  const hits = search?.response?.results ?? [];

  let status = '';
  if (search?.status === 'loading') status = t('status.searching');
  else if (search?.status === 'done') status = t('status.found', { count: hits.length });

  return (
    <section id="results" className="results" aria-labelledby="results-heading" aria-busy={search?.status === 'loading'}>
      <div className="results-head">
        {search && <QueryThumb search={search} />}
        <div>
          <h2 id="results-heading" ref={headingRef} tabIndex={-1} className="results-title">
            {heading}
          </h2>
          <p className="results-status" aria-live="polite" data-testid="status">
            {status}
          </p>
        </div>
      </div>

      {view.kind === 'empty' && <EmptyState icon="photo" title={t('results.emptyTitle')} text={t('results.emptyText')} />}
      {view.kind === 'lost' && <EmptyState icon="photo" title={t('results.lostTitle')} text={t('results.lostText')} />}

      {search?.status === 'loading' && (
        <>
          <div className="banner banner-skeleton shimmer" aria-hidden="true" />
          <SkeletonGrid count={search.options.k} />
        </>
      )}
      {search?.status === 'error' && search.error && <ErrorMessage error={search.error} title onRetry={isRetryable(search.error) ? onRetry : undefined} />}
      {search?.status === 'done' && search.response && (
        <>
          <ResultBanner query={search.response.query} timings={search.response.timings_ms} />
          {hits.length > 0 ? (
            <ResultsGrid hits={hits} onOpen={onOpen} />
          ) : (
            <EmptyState icon="none" title={t('results.noneTitle')} text={t('results.noneText')} />
          )}
        </>
      )}
    </section>
  );
}
