import type { SearchHit } from '../api';
import { ResultCard } from './ResultCard';

interface Props {
  hits: SearchHit[];
  onOpen: (hit: SearchHit, opener: HTMLElement) => void;
}

export function ResultsGrid({ hits, onOpen }: Props) {
  return (
    <ul className="results-grid" data-testid="results-grid">
      {hits.map((hit) => (
        <ResultCard key={hit.id} hit={hit} onOpen={onOpen} />
      ))}
    </ul>
  );
}

/** Placeholder cards while a search runs (as many as asked for, up to a screenful). */
export function SkeletonGrid({ count }: { count: number }) {
  return (
    <ul className="results-grid" aria-hidden="true" data-testid="skeleton-grid">
      {Array.from({ length: Math.min(count, 24) }, (_, i) => (
        <li key={i} className="result-card skeleton">
          <span className="result-thumb shimmer" />
          <span className="skeleton-line shimmer" />
          <span className="skeleton-line short shimmer" />
        </li>
      ))}
    </ul>
  );
}
