import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  ApiError,
  MAX_SOURCE_BYTES,
  checkImageFile,
  clampResults,
  getCategories,
  searchImage,
  clampColorWeight,
  searchOptionsJson,
  searchSimilar,
  type SearchResponse,
} from './api';

const answer: SearchResponse = {
  query: { category: 'coat', confidence: 0.93, probabilities: { coat: 0.93 }, searched: 'coat', fallback_used: false },
  results: [
    {
      id: 'coat-12',
      score: 0.87,
      category: 'coat',
      file_name: '12.jpg',
      image_url: '/api/v1/items/coat-12/image',
      width: 125,
      height: 160,
      metadata: { title: '', price: null, url: '', attributes: {} },
    },
  ],
  timings_ms: { decode: 0.4, model: 95.1, classify: 0.1, search: 0.2, total: 96 },
};

function jsonResponse(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

function mockFetch(response: Response | { throws: unknown }) {
  const fn = vi.fn(async () => {
    if ('throws' in response) throw response.throws;
    return response;
  });
  vi.stubGlobal('fetch', fn);
  return fn;
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('searchImage', () => {
  it('posts the photo and the options as multipart fields', async () => {
    const fetch = mockFetch(jsonResponse(answer));
    const file = new File(['jpeg bytes'], 'shirt.jpg', { type: 'image/jpeg' });
    const res = await searchImage(file, { k: 30, category: 'all', crop: { x: 1.4, y: 2.6, w: 50, h: 60.2 } });
    expect(res.results[0]?.id).toBe('coat-12');
    expect(fetch).toHaveBeenCalledTimes(1);
    const [url, init] = fetch.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('/api/v1/search');
    expect(init.method).toBe('POST');
    const form = init.body as FormData;
    expect(form).toBeInstanceOf(FormData);
    const image = form.get('image') as File;
    expect(image.name).toBe('shirt.jpg');
    expect(image.size).toBe(file.size);
    expect(JSON.parse(form.get('options') as string)).toEqual({ k: 30, category: 'all', crop: { x: 1, y: 3, w: 50, h: 60 } });
  });

  it('leaves the crop out when there is none', () => {
    expect(JSON.parse(searchOptionsJson({ k: 12, category: 'auto', crop: null }))).toEqual({ k: 12, category: 'auto' });
  });

  it('sends the colour weight only when it counts, clamped to 0..1 in steps of 0.05', () => {
    expect(JSON.parse(searchOptionsJson({ k: 12, category: 'all', colorWeight: 0 }))).toEqual({ k: 12, category: 'all' });
    expect(JSON.parse(searchOptionsJson({ k: 12, category: 'all', colorWeight: 0.52 }))).toEqual({ k: 12, category: 'all', color_weight: 0.5 });
    expect(clampColorWeight(7)).toBe(1);
    expect(clampColorWeight(-1)).toBe(0);
    expect(clampColorWeight(Number.NaN)).toBe(0);
    expect(clampColorWeight('0.5')).toBe(0);
  });

  it('turns the server error body into an ApiError with its code and message', async () => {
    mockFetch(jsonResponse({ error: { code: 'unsupported_media_type', message: 'not an image: text' } }, 415));
    const err = await searchImage(new File(['x'], 'a.jpg', { type: 'image/jpeg' }), { k: 12, category: 'auto' }).catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 415, code: 'unsupported_media_type', message: 'not an image: text' });
  });

  it('names an error status without the API body http_<status>', async () => {
    mockFetch(new Response('<html>Bad gateway</html>', { status: 502 }));
    const err = await searchImage(new Blob(['x']), { k: 12, category: 'auto' }).catch((e) => e);
    expect(err).toMatchObject({ status: 502, code: 'http_502' });
  });

  it('reports a failed connection as network_error', async () => {
    mockFetch({ throws: new TypeError('Failed to fetch') });
    const err = await searchImage(new Blob(['x']), { k: 12, category: 'auto' }).catch((e) => e);
    expect(err).toMatchObject({ status: 0, code: 'network_error' });
  });

  it('lets an abort through as it is', async () => {
    mockFetch({ throws: new DOMException('aborted', 'AbortError') });
    const err = await searchImage(new Blob(['x']), { k: 12, category: 'auto' }).catch((e) => e);
    expect(err).not.toBeInstanceOf(ApiError);
    expect(err.name).toBe('AbortError');
  });

  it('refuses a 200 answer that is not a search result', async () => {
    mockFetch(jsonResponse({ hello: 'world' }));
    const err = await searchImage(new Blob(['x']), { k: 12, category: 'auto' }).catch((e) => e);
    expect(err).toMatchObject({ code: 'bad_response' });
  });
});

describe('searchSimilar and the catalog', () => {
  it('asks for similar items by id without uploading', async () => {
    const fetch = mockFetch(jsonResponse(answer));
    await searchSimilar('coat 12/x', { k: 7, category: 'auto' });
    const [url, init] = fetch.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('/api/v1/items/coat%2012%2Fx/similar?k=7&category=auto');
    const again = mockFetch(jsonResponse(answer));
    await searchSimilar('a', { k: 7, category: 'all', colorWeight: 0.25 });
    expect((again.mock.calls[0] as unknown as [string])[0]).toBe('/api/v1/items/a/similar?k=7&category=all&color_weight=0.25');
    expect(init.method).toBeUndefined();
    expect(init.body).toBeUndefined();
  });

  it('reads the category list and drops malformed entries', async () => {
    mockFetch(jsonResponse({ categories: [{ name: 'coat', count: 800 }, { name: 3 }, { name: 'dress', count: 2 }] }));
    expect(await getCategories()).toEqual([
      { name: 'coat', count: 800 },
      { name: 'dress', count: 2 },
    ]);
  });
});

describe('checkImageFile', () => {
  it('accepts images and refuses other files, empty files and files over 64 MB', () => {
    expect(checkImageFile(new File(['x'], 'a.jpg', { type: 'image/jpeg' }))).toBeNull();
    expect(checkImageFile(new File(['x'], 'notes.txt', { type: 'text/plain' }))).toBe('not_an_image');
    expect(checkImageFile(new File(['x'], 'notes.txt'))).toBe('not_an_image');
    expect(checkImageFile(new File(['x'], 'photo-without-type'))).toBeNull();
    expect(checkImageFile(new File([], 'a.png', { type: 'image/png' }))).toBe('empty_file');
    const big = new File([new Uint8Array(MAX_SOURCE_BYTES + 1)], 'big.jpg', { type: 'image/jpeg' });
    expect(checkImageFile(big)).toBe('file_too_large');
    // Up to 64 MB the page reads it (and reduces it when it is over the 10 MB upload limit).
    const limit = new File([new Uint8Array(MAX_SOURCE_BYTES)], 'ok.jpg', { type: 'image/jpeg' });
    expect(checkImageFile(limit)).toBeNull();
  });

  it('keeps the result count within 1..500', () => {
    expect(clampResults(0)).toBe(1);
    expect(clampResults(12.4)).toBe(12);
    expect(clampResults(9999)).toBe(500);
    expect(clampResults(Number.NaN)).toBe(12);
  });
});

describe('filters', () => {
  it('are sent as the API takes them, in JSON and as GET parameters', async () => {
    const { filtersJson, setFilterParams } = await import('./api');
    expect(filtersJson({})).toBeNull();
    expect(filtersJson({ priceMin: 10, attributes: { size: 38, colour: 'navy' } })).toEqual({
      price: { min: 10 },
      attributes: { size: 38, colour: 'navy' },
    });
    const params = new URLSearchParams();
    setFilterParams({ priceMax: 50, attributes: { size: '38', sale: true } }, params);
    expect(params.toString()).toBe('price_max=50&attr.size=%2238%22&attr.sale=true');
  });

  it('keep only what is usable from a remembered value', async () => {
    const { cleanFilters } = await import('./api');
    expect(cleanFilters(null)).toEqual({});
    expect(cleanFilters({ priceMin: -3, priceMax: 'x', attributes: { a: { b: 1 }, c: 'red' } })).toEqual({ attributes: { c: 'red' } });
    expect(cleanFilters({ priceMin: 50, priceMax: 10 })).toEqual({});
  });
});
