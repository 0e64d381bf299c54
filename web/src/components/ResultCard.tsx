import { shownSimilarity, type SearchHit } from '../api';
import { useI18n } from '../i18n';

interface Props {
  hit: SearchHit;
  onOpen: (hit: SearchHit, opener: HTMLElement) => void;
}

export function itemName(hit: { id: string; metadata?: { title?: string } }): string {
  return hit.metadata?.title?.trim() || hit.id;
}

export function ResultCard({ hit, onOpen }: Props) {
  const { t, categoryName, formatPercent } = useI18n();
  const similarity = shownSimilarity(hit);
  const score = formatPercent(similarity);
  return (
    <li className="result-card" data-testid="result-card" data-category={hit.category} data-id={hit.id}>
      <button
        type="button"
        className="result-button"
        aria-label={
          t('card.open', { name: itemName(hit), category: categoryName(hit.category), score }) +
          (hit.same_item ? ` (${t('card.sameItem')})` : '') +
          (hit.hidden_copies ? ` (${t('card.copies', { count: String(hit.hidden_copies) })})` : '')
        }
        onClick={(e) => onOpen(hit, e.currentTarget)}
      >
        <span className="result-thumb">
          <img
            src={hit.image_url}
            alt={t('card.imageAlt', { category: categoryName(hit.category), id: hit.id })}
            loading="lazy"
            decoding="async"
            width={hit.width || undefined}
            height={hit.height || undefined}
          />
        </span>
        <span className="result-info">
          <span className="result-category" data-testid="result-category">
            {categoryName(hit.category)}
          </span>
          {hit.same_item && (
            <span className="result-same-item" data-testid="same-item" title={t('card.sameItemHelp')}>
              {t('card.sameItem')}
            </span>
          )}
          <span className="result-score" title={t('card.scoreHelp')}>
            <span className="visually-hidden">{t('card.score')} </span>
            {score}
          </span>
          {!!hit.hidden_copies && (
            <span
              className="result-copies"
              data-testid="hidden-copies"
              title={t('card.copiesHelp', { ids: (hit.copy_ids ?? []).join(', ') })}
            >
              {t('card.copies', { count: String(hit.hidden_copies) })}
            </span>
          )}
          {hit.color_similarity !== undefined && (
            <span className="result-color" data-testid="color-similarity" title={t('card.colorHelp')}>
              {t('card.color', { score: formatPercent(hit.color_similarity) })}
            </span>
          )}
        </span>
        {hit.metadata?.title && <span className="result-title">{hit.metadata.title}</span>}
        <span className="score-bar" aria-hidden="true">
          <span style={{ width: `${similarity * 100}%` }} />
        </span>
      </button>
    </li>
  );
}
