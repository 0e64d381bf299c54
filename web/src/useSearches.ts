// The searches a visitor ran in this tab: runs them, keeps their answers, and ties each one to a
// browser history entry so back/forward move between them.
import { useCallback, useEffect, useRef, useState } from 'react';
import { isAbortError, searchImage, searchSimilar, type Crop, type Filters, type Item, type SearchResponse } from './api';
import { errorFromException, type UiError } from './errors';
import { parseLocation, readState, SeqCounter, urlFor, type NavState } from './navigation';

export interface Photo {
  file: File;
  /** An object URL for showing the photo. */
  url: string;
  width: number;
  height: number;
}

export type Source =
  | { kind: 'upload'; photo: Photo; crop: Crop | null }
  | { kind: 'similar'; id: string; item: Item | null };

export interface SearchOptionsState {
  k: number;
  category: string;
  colorWeight?: number;
  filters?: Filters;
}

export interface Search {
  seq: number;
  source: Source;
  options: SearchOptionsState;
  status: 'loading' | 'done' | 'error';
  response?: SearchResponse;
  error?: UiError;
}

export type View = { kind: 'empty' } | { kind: 'lost' } | { kind: 'search'; search: Search };

/** How a new search changes the browser history. */
export type NavMode = 'push' | 'replace' | 'none';

/** Searches kept for back/forward; older ones are dropped (and their photos with them). */
export const CACHE_LIMIT = 40;

function navState(s: Search): NavState {
  return s.source.kind === 'similar'
    ? { app: 'lookalike', seq: s.seq, kind: 'similar', id: s.source.id }
    : { app: 'lookalike', seq: s.seq, kind: 'upload' };
}

interface Handlers {
  /** Coming back (back/forward) to a search with a photo: show that photo and crop again. */
  onRestoreUpload: (source: Extract<Source, { kind: 'upload' }>) => void;
  /** Any back/forward move (e.g. to close a dialog). */
  onNavigate: () => void;
  /** The options to use when a search has to be run again without its own (a ?similar= link). */
  currentOptions: () => SearchOptionsState;
}

export function useSearches({ onRestoreUpload, onNavigate, currentOptions }: Handlers) {
  const [view, setView] = useState<View>({ kind: 'empty' });
  const viewRef = useRef(view);
  viewRef.current = view;
  const cache = useRef(new Map<number, Search>());
  const counter = useRef(new SeqCounter());
  const current = useRef(0);
  const controller = useRef<AbortController | null>(null);
  const handlers = useRef({ onRestoreUpload, onNavigate, currentOptions });
  handlers.current = { onRestoreUpload, onNavigate, currentOptions };

  const remember = (s: Search) => {
    cache.current.delete(s.seq);
    cache.current.set(s.seq, s);
    while (cache.current.size > CACHE_LIMIT) {
      const oldest = cache.current.keys().next().value as number;
      const dropped = cache.current.get(oldest);
      cache.current.delete(oldest);
      const url = dropped?.source.kind === 'upload' ? dropped.source.photo.url : null;
      const stillUsed = url && Array.from(cache.current.values()).some((o) => o.source.kind === 'upload' && o.source.photo.url === url);
      if (url && !stillUsed) URL.revokeObjectURL(url);
    }
  };

  const run = useCallback((source: Source, options: SearchOptionsState, nav: NavMode, seq?: number) => {
    const search: Search = { seq: seq ?? counter.current.next(), source, options, status: 'loading' };
    remember(search);
    current.current = search.seq;
    if (nav === 'push') window.history.pushState(navState(search), '', urlFor(navState(search)));
    if (nav === 'replace') window.history.replaceState(navState(search), '', urlFor(navState(search)));
    setView({ kind: 'search', search });

    controller.current?.abort();
    const ctl = new AbortController();
    controller.current = ctl;
    const request =
      source.kind === 'upload'
        ? searchImage(source.photo.file, { ...options, crop: source.crop }, ctl.signal)
        : searchSimilar(source.id, options, ctl.signal);

    const finish = (patch: Partial<Search>) => {
      const done = { ...search, ...patch };
      if (cache.current.has(search.seq)) cache.current.set(search.seq, done);
      if (current.current === search.seq) setView({ kind: 'search', search: done });
    };
    request.then(
      (response) => finish({ status: 'done', response }),
      (e: unknown) => {
        if (isAbortError(e)) return;
        finish({ status: 'error', error: errorFromException(e) });
      },
    );
  }, []);

  /** Runs the shown search again in place (the retry button, or new options). */
  const rerun = useCallback(
    (options?: SearchOptionsState) => {
      // The view now, not when the caller was rendered (a debounced option change comes later).
      const shown = viewRef.current;
      if (shown.kind !== 'search') return;
      run(shown.search.source, options ?? shown.search.options, 'replace');
    },
    [run],
  );

  const show = useCallback(
    (state: NavState | null) => {
      if (!state) {
        controller.current?.abort();
        current.current = 0;
        setView({ kind: 'empty' });
        return;
      }
      counter.current.observe(state.seq);
      const cached = cache.current.get(state.seq);
      if (cached) {
        if (cached.source.kind === 'upload') handlers.current.onRestoreUpload(cached.source);
        if (cached.status === 'done') {
          controller.current?.abort();
          current.current = cached.seq;
          setView({ kind: 'search', search: cached });
        } else {
          run(cached.source, cached.options, 'none', cached.seq);
        }
      } else if (state.kind === 'similar') {
        run({ kind: 'similar', id: state.id, item: null }, handlers.current.currentOptions(), 'none', state.seq);
      } else {
        controller.current?.abort();
        current.current = 0;
        setView({ kind: 'lost' });
      }
    },
    [run],
  );

  // The page's own URL on load (a bookmark or a reload), then every back/forward move.
  useEffect(() => {
    const state = readState(window.history.state);
    if (state) counter.current.observe(state.seq);
    const loc = parseLocation(window.location.search);
    if (loc?.kind === 'similar') {
      run({ kind: 'similar', id: loc.id, item: null }, handlers.current.currentOptions(), 'replace', state?.seq);
    } else if (loc?.kind === 'upload') {
      counter.current.observe(loc.seq);
      setView({ kind: 'lost' });
    }
    const onPop = (e: PopStateEvent) => {
      handlers.current.onNavigate();
      show(readState(e.state));
    };
    window.addEventListener('popstate', onPop);
    return () => {
      window.removeEventListener('popstate', onPop);
      controller.current?.abort();
    };
  }, [run, show]);

  return { view, run, rerun };
}
