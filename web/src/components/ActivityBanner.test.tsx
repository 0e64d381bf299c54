import { act, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Activity } from '../api';
import { translate } from '../i18n';
import { renderWithI18n } from '../test/render';
import { POLL_IDLE_MS, POLL_RUNNING_MS } from '../useActivity';
import { ActivityBanner, durationText, phaseText } from './ActivityBanner';

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

const training: Activity = {
  job: 'train',
  state: 'running',
  phase: 'epoch 3/12',
  done: 40,
  total: 120,
  eta_seconds: 250,
  message: '',
  updated_at: 1,
};

let answers: unknown[];
let fetchMock: ReturnType<typeof vi.fn>;

beforeEach(() => {
  vi.useFakeTimers({ shouldAdvanceTime: true });
  answers = [];
  // Each poll takes the next answer; the last one repeats.
  fetchMock = vi.fn(async () => {
    const body = answers.length > 1 ? answers.shift() : answers[0];
    return body instanceof Response ? body : json(body);
  });
  vi.stubGlobal('fetch', fetchMock);
});

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

async function poll(ms: number) {
  await act(async () => {
    await vi.advanceTimersByTimeAsync(ms);
  });
}

describe('ActivityBanner', () => {
  it('shows the training epoch, progress and ETA, and which version answers meanwhile', async () => {
    answers = [{ items: 4792, model_version: 0, activity: [training] }];
    renderWithI18n(<ActivityBanner />);
    const job = await screen.findByTestId('activity-train');
    expect(job).toHaveTextContent('Learning your categories in the background');
    expect(job).toHaveTextContent('Epoch 3 of 12 · 40 of 120 · about 5 min left');
    expect(job).toHaveTextContent('Results come from the basic model until the trained one is ready');
    expect(job.querySelector('progress')).toHaveAttribute('value', '40');
    expect(fetchMock).toHaveBeenCalledWith('/api/v1/stats', expect.anything());
  });

  it('polls while a job runs and announces the version that starts answering', async () => {
    answers = [
      { items: 48, model_version: 0, activity: [training] },
      { items: 48, model_version: 1, activity: [{ ...training, state: 'finished', message: 'model version 1' }] },
    ];
    renderWithI18n(<ActivityBanner />, 'ko');
    await screen.findByTestId('activity-train');
    await poll(POLL_RUNNING_MS + 10);
    const switched = await screen.findByTestId('activity-switched');
    expect(switched).toHaveTextContent('모델 버전 1이 이제 검색 결과를 냅니다');
    expect(screen.queryByTestId('activity-train')).toBeNull();
    await userEvent.click(screen.getByRole('button', { name: '닫기' }));
    expect(screen.queryByTestId('activity')).toBeNull();
    // Nothing runs any more: the next poll waits the idle interval.
    const calls = fetchMock.mock.calls.length;
    await poll(POLL_RUNNING_MS + 10);
    expect(fetchMock.mock.calls.length).toBe(calls);
    await poll(POLL_IDLE_MS);
    expect(fetchMock.mock.calls.length).toBe(calls + 1);
  });

  it('shows an import and a failed training; says nothing when all is quiet or stats fail', async () => {
    answers = [
      {
        items: 10,
        model_version: 1,
        activity: [
          { ...training, job: 'import', phase: 'importing photos', done: 1200, total: 4792, eta_seconds: 30 },
          { ...training, state: 'failed', message: 'disk full' },
        ],
      },
    ];
    const { unmount } = renderWithI18n(<ActivityBanner />);
    expect(await screen.findByTestId('activity-import')).toHaveTextContent('Embedding photos · 1,200 of 4,792 · about 30 s left');
    expect(screen.getByTestId('activity-failed')).toHaveTextContent('Training the categories failed: disk full');
    unmount();
    answers = [{ items: 10, model_version: 1, activity: [{ ...training, state: 'stopped' }] }];
    const quiet = renderWithI18n(<ActivityBanner />);
    await act(async () => {
      await vi.advanceTimersByTimeAsync(10);
    });
    expect(screen.queryByTestId('activity')).toBeNull();
    quiet.unmount();
    answers = [json({ error: { code: 'not_ready', message: 'loading' } }, 503)];
    renderWithI18n(<ActivityBanner />);
    await act(async () => {
      await vi.advanceTimersByTimeAsync(10);
    });
    expect(screen.queryByTestId('activity')).toBeNull();
  });

  it('words phases and durations in both languages', () => {
    const en = (k: Parameters<typeof translate>[1], p?: Record<string, string | number>) => translate('en', k, p);
    const ko = (k: Parameters<typeof translate>[1], p?: Record<string, string | number>) => translate('ko', k, p);
    expect(phaseText('learning the PCA-whitening of 48 descriptors', en)).toBe('Learning the PCA-whitening');
    expect(phaseText('epoch 2/12', ko)).toBe('에포크 2/12');
    expect(phaseText('something new', en)).toBe('something new');
    expect(durationText(0.2, en)).toBe('1 s');
    expect(durationText(61, en)).toBe('2 min');
    expect(durationText(3700, en)).toBe('1 h 02 min');
    expect(durationText(3700, ko)).toBe('1시간 02분');
  });
});
