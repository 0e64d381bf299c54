import type { ReactNode } from 'react';
import { act, fireEvent, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { SearchHit, SearchResponse } from './api';
import { App } from './App';
import { renderWithI18n } from './test/render';

// The real cropper needs layout (jsdom has none). This stand-in reports a box when asked, as the
// real one does after a drag or a nudge: in percent of the photo, fractional.
vi.mock('react-image-crop', () => ({
  default: (props: {
    children: ReactNode;
    onChange: (px: unknown, percent: unknown) => void;
    onComplete: (px: unknown, percent: unknown) => void;
    ariaLabels: Record<string, string>;
  }) => {
    const box = { unit: '%', x: 16.32, y: 20.4, width: 48, height: 46.8 };
    return (
      <div>
        <div tabIndex={0} aria-label={props.ariaLabels.cropArea} />
        {props.children}
        <button
          type="button"
          onClick={() => {
            props.onChange({}, box);
            props.onComplete({}, box);
          }}
        >
          fake-drag
        </button>
      </div>
    );
  },
}));

vi.mock('./imageSize', () => ({
  loadImageSize: vi.fn(async (url: string) => {
    if (url.includes('broken')) throw new Error('cannot decode');
    if (url.includes('huge') || url.includes('undecodable')) return { width: 6000, height: 4500 };
    return { width: 125, height: 150 };
  }),
}));

// jsdom has no canvas: the reduction itself runs in Chromium (e2e); here it stands in with a
// reduced photo, or fails as a browser that cannot encode would.
vi.mock('./downscale', async (importOriginal) => ({
  ...(await importOriginal<typeof import('./downscale')>()),
  downscalePhoto: vi.fn(async (file: File) => {
    if (file.name.includes('undecodable')) throw new Error('the browser could not encode the reduced photo');
    return { file: new File(['reduced jpeg'], 'huge.jpg', { type: 'image/jpeg' }), width: 4000, height: 3000 };
  }),
}));

function hit(i: number, category: string): SearchHit {
  return {
    id: `${category}-${i}`,
    score: 0.9 - i * 0.01,
    similarity: 0.8 - i * 0.05,
    category,
    file_name: `${i}.jpg`,
    image_url: `/api/v1/items/${category}-${i}/image`,
    width: 125,
    height: 150,
    metadata: { title: '', price: null, url: '', attributes: {} },
  };
}

function answer(n: number, category: string, fallback = false): SearchResponse {
  return {
    query: { category, confidence: 0.91, probabilities: { [category]: 0.91 }, searched: fallback ? 'all' : category, fallback_used: fallback },
    results: Array.from({ length: n }, (_, i) => hit(i, category)),
    timings_ms: { decode: 0.4, model: 95.1, classify: 0.1, search: 0.2, total: 96 },
  };
}

const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

type Handler = (url: string, init?: RequestInit) => Response | Promise<Response>;
let routes: Record<string, Handler>;
let fetchMock: ReturnType<typeof vi.fn>;
let objectUrls = 0;

function requests(path: string) {
  return fetchMock.mock.calls.filter(([url]) => String(url).startsWith(path));
}

function lastOptions() {
  const calls = requests('/api/v1/search');
  const init = calls[calls.length - 1]?.[1] as RequestInit;
  return JSON.parse((init.body as FormData).get('options') as string);
}

beforeEach(() => {
  routes = {
    '/api/v1/categories': () => json({ categories: [{ name: 'coat', count: 16 }, { name: 'shirts', count: 16 }] }),
    '/api/v1/search': (_url, init) => {
      const options = JSON.parse((init?.body as FormData).get('options') as string);
      return json(answer(options.k, 'shirts'));
    },
    '/api/v1/items/': (url) => {
      const k = Number(new URL(url, 'http://x').searchParams.get('k'));
      return json(answer(k, 'coat'));
    },
  };
  fetchMock = vi.fn(async (url: string, init?: RequestInit) => {
    const key = Object.keys(routes).find((p) => url.startsWith(p));
    if (!key) return json({ error: { code: 'not_found', message: `no route ${url}` } }, 404);
    return routes[key]!(url, init);
  });
  vi.stubGlobal('fetch', fetchMock);
  URL.createObjectURL = vi.fn((f: Blob) => `blob:${(f as File).name}-${++objectUrls}`);
  URL.revokeObjectURL = vi.fn();
  Element.prototype.scrollIntoView = vi.fn();
});

afterEach(() => {
  vi.unstubAllGlobals();
});

const photo = (name = 'shirt.jpg') => new File(['jpeg bytes'], name, { type: 'image/jpeg' });

async function upload(file: File) {
  await userEvent.upload(screen.getByLabelText('Photo to search with'), file);
}

describe('App', () => {
  it('searches with an uploaded photo and shows the cards, the banner and the URL', async () => {
    renderWithI18n(<App />);
    expect(screen.getByText('Start with a photo')).toBeInTheDocument();
    await upload(photo());
    await waitFor(() => expect(screen.getAllByTestId('result-card')).toHaveLength(12));
    expect(lastOptions()).toEqual({ k: 12, category: 'auto' });
    const form = requests('/api/v1/search')[0]![1]!.body as FormData;
    expect((form.get('image') as File).name).toBe('shirt.jpg');
    expect(screen.getByTestId('banner')).toHaveTextContent('Looks like: Shirt');
    expect(screen.getByTestId('banner')).toHaveTextContent('91% sure');
    expect(screen.getByTestId('status')).toHaveTextContent('12 results');
    expect(screen.getByRole('heading', { name: 'Items like your photo' })).toBeInTheDocument();
    expect(window.location.search).toMatch(/^\?search=\d+$/);
  });

  it('shows loading skeletons while the search runs', async () => {
    let release: (r: Response) => void = () => {};
    routes['/api/v1/search'] = () => new Promise<Response>((r) => (release = r));
    renderWithI18n(<App />);
    await upload(photo());
    expect(await screen.findByTestId('skeleton-grid')).toBeInTheDocument();
    expect(screen.getByTestId('status')).toHaveTextContent('Searching for lookalikes…');
    expect(screen.getByRole('region', { name: 'Items like your photo' })).toHaveAttribute('aria-busy', 'true');
    await act(async () => release(json(answer(3, 'shirts'))));
    await waitFor(() => expect(screen.getAllByTestId('result-card')).toHaveLength(3));
    expect(screen.queryByTestId('skeleton-grid')).toBeNull();
  });

  it('refuses a text file and a broken image in the browser, uploading nothing', async () => {
    renderWithI18n(<App />, 'ko');
    await userEvent.upload(screen.getByLabelText('검색할 사진'), new File(['hello'], 'notes.txt', { type: 'text/plain' }), {
      applyAccept: false,
    });
    expect(await screen.findByRole('alert')).toHaveTextContent('이미지 파일이 아닙니다');
    await userEvent.upload(screen.getByLabelText('검색할 사진'), photo('broken.jpg'));
    expect(await screen.findByRole('alert')).toHaveTextContent('이미지를 열 수 없습니다');
    expect(requests('/api/v1/search')).toHaveLength(0);
  });

  it('reduces a photo over 4,000 px before sending it, says so, and crops the reduced one', async () => {
    renderWithI18n(<App />);
    await upload(photo('huge.png'));
    await waitFor(() => expect(screen.getAllByTestId('result-card')).toHaveLength(12));
    const sent = (requests('/api/v1/search')[0]![1]!.body as FormData).get('image') as File;
    expect(sent.name).toBe('huge.jpg');
    expect(sent.size).toBe('reduced jpeg'.length);
    expect(screen.getByTestId('upload-notice')).toHaveTextContent(
      'Reduced in your browser from 6,000 × 4,500 px (0 MB) to 4,000 × 3,000 px (0 MB) before sending.',
    );
    expect(screen.getByText('Area 4000 × 3000 px of 4000 × 3000 px')).toBeInTheDocument();
    // The note follows the language.
    await userEvent.click(screen.getByRole('button', { name: '한국어' }));
    expect(screen.getByTestId('upload-notice')).toHaveTextContent('6,000 × 4,500px(0MB)을 4,000 × 3,000px(0MB)로 줄였습니다');
    await userEvent.click(screen.getByRole('button', { name: 'English' }));
    // A photo the browser cannot reduce is refused with a clear message, and nothing is sent.
    await upload(photo('undecodable.png'));
    expect(await screen.findByRole('alert')).toHaveTextContent('your browser could not reduce it');
    expect(requests('/api/v1/search')).toHaveLength(1);
    expect(screen.queryByTestId('upload-notice')).toBeNull();
  });

  it('shows the server error translated, with its own message', async () => {
    routes['/api/v1/search'] = () => json({ error: { code: 'unprocessable_image', message: 'image is 90000x90000' } }, 422);
    renderWithI18n(<App />);
    await upload(photo());
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('The search did not work');
    expect(alert).toHaveTextContent('The image could not be used');
    expect(alert).toHaveTextContent('Server message: image is 90000x90000');
    // Trying the same photo again cannot help here.
    expect(within(alert).queryByRole('button', { name: 'Try again' })).toBeNull();
  });

  it('offers a retry when the server was unreachable', async () => {
    routes['/api/v1/search'] = () => Promise.reject(new TypeError('Failed to fetch'));
    renderWithI18n(<App />);
    await upload(photo());
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('Could not reach the server');
    routes['/api/v1/search'] = () => json(answer(12, 'shirts'));
    await userEvent.click(within(alert).getByRole('button', { name: 'Try again' }));
    await waitFor(() => expect(screen.getAllByTestId('result-card')).toHaveLength(12));
  });

  it('sends the crop in source pixels with "Search this area"', async () => {
    renderWithI18n(<App />);
    await upload(photo());
    await waitFor(() => expect(screen.getAllByTestId('result-card')).toHaveLength(12));
    expect(screen.getByTestId('crop-size')).toHaveTextContent('Area 125 × 150 px of 125 × 150 px');
    await userEvent.click(screen.getByRole('button', { name: 'fake-drag' }));
    expect(screen.getByTestId('crop-size')).toHaveTextContent('Area 60 × 70 px of 125 × 150 px');
    await userEvent.click(screen.getByRole('button', { name: 'Search this area' }));
    await waitFor(() => expect(requests('/api/v1/search')).toHaveLength(2));
    expect(lastOptions()).toEqual({ k: 12, category: 'auto', crop: { x: 20, y: 31, w: 60, h: 70 } });
    expect(await screen.findByRole('heading', { name: 'Items like the selected area of your photo' })).toBeInTheDocument();
  });

  it('offers a free box by default, preset shapes as the largest centred box, and a reset', async () => {
    renderWithI18n(<App />);
    await upload(photo());
    await waitFor(() => expect(screen.getAllByTestId('result-card')).toHaveLength(12));
    const shape = screen.getByRole('combobox', { name: 'Box shape' });
    expect(shape).toHaveValue('free');
    expect(screen.getByRole('button', { name: 'Reset' })).toBeDisabled();
    await userEvent.selectOptions(shape, 'square');
    // The largest square in 125 x 150 px: 125 px, 12.5 px down.
    expect(screen.getByTestId('crop-size')).toHaveTextContent('Area 125 × 125 px of 125 × 150 px');
    await userEvent.selectOptions(shape, 'free');
    expect(screen.getByTestId('crop-size')).toHaveTextContent('Area 125 × 125 px of 125 × 150 px');
    await userEvent.click(screen.getByRole('button', { name: 'Reset' }));
    expect(screen.getByTestId('crop-size')).toHaveTextContent('Area 125 × 150 px of 125 × 150 px');
    expect(shape).toHaveValue('free');
    expect(screen.getByRole('button', { name: 'Search whole photo' })).toBeEnabled();
  });

  it('opens a card, searches "more like this" by id, and goes back without uploading again', async () => {
    renderWithI18n(<App />);
    await upload(photo());
    await waitFor(() => expect(screen.getAllByTestId('result-card')).toHaveLength(12));
    const uploadUrl = window.location.search;
    const card = screen.getByRole('button', { name: 'Details for shirts-0 (Shirt, 80% similar)' });
    await userEvent.click(card);
    const dialog = screen.getByRole('dialog');
    expect(dialog).toHaveTextContent('shirts-0');
    await userEvent.keyboard('{Escape}');
    expect(screen.queryByRole('dialog')).toBeNull();
    await waitFor(() => expect(card).toHaveFocus());

    await userEvent.click(card);
    await userEvent.click(screen.getByRole('button', { name: 'More like this' }));
    await waitFor(() => expect(screen.getAllByTestId('result-card')[0]).toHaveAttribute('data-category', 'coat'));
    expect(requests('/api/v1/items/')[0]![0]).toBe('/api/v1/items/shirts-0/similar?k=12&category=auto');
    expect(window.location.search).toBe('?similar=shirts-0');
    expect(screen.getByRole('heading', { name: 'Items like shirts-0' })).toBeInTheDocument();
    expect(requests('/api/v1/search')).toHaveLength(1);

    // Back: the photo search comes from memory.
    await act(async () => {
      window.history.back();
      await new Promise((r) => window.addEventListener('popstate', r, { once: true }));
    });
    expect(window.location.search).toBe(uploadUrl);
    await waitFor(() => expect(screen.getAllByTestId('result-card')[0]).toHaveAttribute('data-category', 'shirts'));
    expect(screen.getByRole('heading', { name: 'Items like your photo' })).toBeInTheDocument();
    expect(requests('/api/v1/search')).toHaveLength(1);
  });

  it('uses and remembers the options, and runs the shown search again with them', async () => {
    renderWithI18n(<App />);
    await upload(photo());
    await waitFor(() => expect(screen.getAllByTestId('result-card')).toHaveLength(12));
    fireEvent.change(screen.getByLabelText('Category'), { target: { value: 'all' } });
    await waitFor(() => expect(requests('/api/v1/search')).toHaveLength(2));
    expect(lastOptions()).toEqual({ k: 12, category: 'all' });
    fireEvent.change(screen.getByLabelText('Number of results'), { target: { value: '30' } });
    fireEvent.blur(screen.getByLabelText('Number of results'));
    await waitFor(() => expect(screen.getAllByTestId('result-card')).toHaveLength(30));
    expect(lastOptions()).toEqual({ k: 30, category: 'all' });
    expect(JSON.parse(localStorage.getItem('lookalike.options.v1')!)).toEqual({ k: 30, category: 'all', colorWeight: 0, filters: {} });
  });

  it('starts from remembered options and a ?similar= link', async () => {
    localStorage.setItem('lookalike.options.v1', JSON.stringify({ k: 5, category: 'coat' }));
    window.history.replaceState(null, '', '/?similar=coat-3');
    renderWithI18n(<App />);
    await waitFor(() => expect(screen.getAllByTestId('result-card')).toHaveLength(5));
    expect(requests('/api/v1/items/')[0]![0]).toBe('/api/v1/items/coat-3/similar?k=5&category=coat');
    expect(screen.getByLabelText('Number of results')).toHaveValue(5);
    expect(screen.getByLabelText('Category')).toHaveValue('coat');
  });

  it('says so when a photo search cannot be restored after a reload', async () => {
    window.history.replaceState({ app: 'lookalike', seq: 4, kind: 'upload' }, '', '/?search=4');
    renderWithI18n(<App />);
    expect(screen.getByText('This search is no longer available')).toBeInTheDocument();
    expect(await screen.findByRole('option', { name: 'Coat (16)' })).toBeInTheDocument();
    expect(requests('/api/v1/search')).toHaveLength(0);
  });

  it('forgets a remembered category the catalog no longer has', async () => {
    localStorage.setItem('lookalike.options.v1', JSON.stringify({ k: 12, category: 'socks' }));
    renderWithI18n(<App />);
    await waitFor(() => expect(screen.getByLabelText('Category')).toHaveValue('auto'));
  });

  it('shows an empty state when nothing matched', async () => {
    routes['/api/v1/search'] = () => json(answer(0, 'shirts'));
    renderWithI18n(<App />);
    await upload(photo());
    expect(await screen.findByText('No matching items')).toBeInTheDocument();
  });
});
