// Browser history entries for searches, so back/forward move between them.
// An uploaded-photo search is `?search=N` (N: a counter; the photo itself lives in an in-memory
// cache keyed by N, so it survives back/forward but not a reload). A catalog-item search is
// `?similar=ID` and can always be run again, even from a bookmark.

export type NavState = { app: 'lookalike'; seq: number; kind: 'upload' } | { app: 'lookalike'; seq: number; kind: 'similar'; id: string };

export type LocationQuery = { kind: 'upload'; seq: number } | { kind: 'similar'; id: string } | null;

export function urlFor(state: NavState): string {
  const params = new URLSearchParams();
  if (state.kind === 'similar') params.set('similar', state.id);
  else params.set('search', String(state.seq));
  return `?${params.toString()}`;
}

export function readState(value: unknown): NavState | null {
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  if (v.app !== 'lookalike' || typeof v.seq !== 'number') return null;
  if (v.kind === 'upload') return { app: 'lookalike', seq: v.seq, kind: 'upload' };
  if (v.kind === 'similar' && typeof v.id === 'string' && v.id) return { app: 'lookalike', seq: v.seq, kind: 'similar', id: v.id };
  return null;
}

export function parseLocation(search: string): LocationQuery {
  const params = new URLSearchParams(search);
  const similar = params.get('similar');
  if (similar) return { kind: 'similar', id: similar };
  const seq = Number(params.get('search'));
  if (params.has('search') && Number.isInteger(seq) && seq > 0) return { kind: 'upload', seq };
  return null;
}

/** Hands out search numbers above any already in this tab's history. */
export class SeqCounter {
  private last: number;

  constructor(start = 0) {
    this.last = start;
  }

  next(): number {
    this.last += 1;
    return this.last;
  }

  /** Makes later numbers larger than `seq` (a number seen in history.state or the URL). */
  observe(seq: number): void {
    if (seq > this.last) this.last = seq;
  }
}
