import { useCallback, useEffect, useRef, useState } from 'react';
import { getStats, isAbortError, type Stats } from './api';

/** How often the page asks /api/v1/stats: often while a job runs, rarely otherwise. */
export const POLL_RUNNING_MS = 3000;
export const POLL_IDLE_MS = 30000;

export interface ActivityState {
  stats: Stats | null;
  /** The trained version that started answering while this page was open (null: none). */
  switchedTo: number | null;
  dismissSwitched: () => void;
}

/**
 * Follows the catalog's long jobs (an import, the head's training in the background) and the
 * version that answers. A failed poll is retried at the idle pace: the banner is a courtesy and
 * must never get in the way of searching.
 */
export function useActivity(): ActivityState {
  const [stats, setStats] = useState<Stats | null>(null);
  const [switchedTo, setSwitchedTo] = useState<number | null>(null);
  const lastVersion = useRef<number | null>(null);

  useEffect(() => {
    const ctl = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let alive = true;
    const tick = async () => {
      let wait = POLL_IDLE_MS;
      try {
        const next = await getStats(ctl.signal);
        if (!alive) return;
        if (lastVersion.current !== null && next.model_version !== lastVersion.current && next.model_version > 0) {
          setSwitchedTo(next.model_version);
        }
        lastVersion.current = next.model_version;
        setStats(next);
        if (next.activity.some((a) => a.state === 'running')) wait = POLL_RUNNING_MS;
      } catch (e) {
        if (isAbortError(e)) return;
      }
      if (alive) timer = setTimeout(tick, wait);
    };
    void tick();
    return () => {
      alive = false;
      ctl.abort();
      clearTimeout(timer);
    };
  }, []);

  const dismissSwitched = useCallback(() => setSwitchedTo(null), []);
  return { stats, switchedTo, dismissSwitched };
}
