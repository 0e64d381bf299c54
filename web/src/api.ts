// Typed client for the Lookalike HTTP API (same origin: the C++ server serves this page).

export interface ItemMetadata {
  title: string;
  price: number | null;
  url: string;
  attributes: Record<string, unknown>;
}

export interface Item {
  id: string;
  category: string;
  file_name: string;
  image_url: string;
  width: number;
  height: number;
  metadata: ItemMetadata;
}

export interface SearchHit extends Item {
  /** Cosine of the query's and the item's vectors, -1..1. */
  score: number;
  /**
   * The score on this catalog's own scale, 0..1: the share of typical nearest-neighbour
   * similarities in the catalog that it beats (0.9 = closer than 90% of look-alikes usually are).
   * Absent from servers older than this field.
   */
  similarity?: number;
  /** True when the server recognised this hit as the query's very product shot (ranked first). */
  same_item?: boolean;
  /** 0..1, when the search weighed colour: how close the product's colours are to the query's. */
  color_similarity?: number;
  /**
   * Other items whose photos are copies of this one's (the same product shot resized, cropped or
   * mirrored), hidden from the results so that one product shows once; absent when none.
   */
  hidden_copies?: number;
  copy_ids?: string[];
}

/** What the page shows as a hit's similarity: the catalog-scaled value when the server sends it. */
export function shownSimilarity(hit: SearchHit): number {
  return Math.max(0, Math.min(1, hit.similarity ?? hit.score));
}

export interface QueryInfo {
  category: string | null;
  confidence: number;
  probabilities: Record<string, number>;
  searched: string;
  fallback_used: boolean;
  /** Model version that answered: 0 is the frozen recipe, 1+ a head trained on this catalog. */
  model_version?: number;
}

export interface Timings {
  decode: number;
  model: number;
  classify: number;
  search: number;
  total: number;
}

export interface SearchResponse {
  query: QueryInfo;
  results: SearchHit[];
  timings_ms: Partial<Timings>;
}

export interface Category {
  name: string;
  count: number;
}

/** Crop rectangle in source (natural image) pixels. */
export interface Crop {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** "auto": the CNN picks the category; "all": every category; anything else: a category name. */
export type CategoryMode = string;

export type AttributeValue = string | number | boolean;

/** Metadata filters: only items within the price range and with every attribute value given. */
export interface Filters {
  priceMin?: number;
  priceMax?: number;
  /** By attribute name; values keep their type (38 and "38" are different values). */
  attributes?: Record<string, AttributeValue>;
}

/** What the catalog can be filtered by (GET /api/v1/attributes). */
export interface Facets {
  price: { min: number; max: number; items: number } | null;
  attributes: { name: string; items: number; values: { value: AttributeValue; count: number }[] }[];
}

export interface SearchOptions {
  k: number;
  category: CategoryMode;
  crop?: Crop | null;
  /** 0..1: how much the products' colours count against their look (0 or absent: look alone). */
  colorWeight?: number;
  filters?: Filters;
}

function isAttributeValue(v: unknown): v is AttributeValue {
  return typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
}

function isPrice(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}

/** The usable part of a filters value of unknown origin (remembered by an older page, say). */
export function cleanFilters(v: unknown): Filters {
  if (!isRecord(v)) return {};
  const out: Filters = {};
  if (isPrice(v.priceMin)) out.priceMin = v.priceMin;
  if (isPrice(v.priceMax)) out.priceMax = v.priceMax;
  if (out.priceMin !== undefined && out.priceMax !== undefined && out.priceMin > out.priceMax) return {};
  if (isRecord(v.attributes)) {
    const attributes = Object.fromEntries(Object.entries(v.attributes).filter(([, value]) => isAttributeValue(value)));
    if (Object.keys(attributes).length > 0) out.attributes = attributes as Record<string, AttributeValue>;
  }
  return out;
}

export function hasFilters(f: Filters | undefined): boolean {
  return !!f && (f.priceMin !== undefined || f.priceMax !== undefined || Object.keys(f.attributes ?? {}).length > 0);
}

/** The search options' `filters` object, or null when nothing is filtered. */
export function filtersJson(f: Filters | undefined): Record<string, unknown> | null {
  if (!f || !hasFilters(f)) return null;
  const out: Record<string, unknown> = {};
  if (f.priceMin !== undefined || f.priceMax !== undefined) {
    out.price = { ...(f.priceMin !== undefined ? { min: f.priceMin } : {}), ...(f.priceMax !== undefined ? { max: f.priceMax } : {}) };
  }
  if (f.attributes && Object.keys(f.attributes).length > 0) out.attributes = f.attributes;
  return out;
}

/** The same filters as GET parameters (price_min, price_max, attr.NAME with a JSON scalar). */
export function setFilterParams(f: Filters | undefined, params: URLSearchParams): void {
  if (!f) return;
  if (f.priceMin !== undefined) params.set('price_min', String(f.priceMin));
  if (f.priceMax !== undefined) params.set('price_max', String(f.priceMax));
  for (const [name, value] of Object.entries(f.attributes ?? {})) params.set(`attr.${name}`, JSON.stringify(value));
}

export async function getFacets(signal?: AbortSignal): Promise<Facets> {
  const body = await request<Record<string, unknown>>('/api/v1/attributes', { signal });
  if (!isRecord(body) || !Array.isArray(body.attributes)) throw new ApiError(200, 'bad_response', 'no attributes in the answer');
  const p = body.price;
  const price = isRecord(p) && isPrice(p.min) && isPrice(p.max) && typeof p.items === 'number' ? { min: p.min, max: p.max, items: p.items } : null;
  const attributes: Facets['attributes'] = [];
  for (const a of body.attributes) {
    if (!isRecord(a) || typeof a.name !== 'string' || !Array.isArray(a.values)) continue;
    const values = a.values.filter(
      (v): v is { value: AttributeValue; count: number } => isRecord(v) && isAttributeValue(v.value) && typeof v.count === 'number',
    );
    if (values.length > 0) attributes.push({ name: a.name, items: typeof a.items === 'number' ? a.items : 0, values });
  }
  return { price, attributes };
}

/** The colour weight as sent: within 0..1, in steps of 0.05, 0 for anything unusable. */
export function clampColorWeight(w: unknown): number {
  if (typeof w !== 'number' || !Number.isFinite(w)) return 0;
  return Math.round(Math.min(1, Math.max(0, w)) * 20) / 20;
}

export const MIN_RESULTS = 1;
export const MAX_RESULTS = 500;
export const MAX_UPLOAD_BYTES = 10 * 1024 * 1024;
/** The largest photo the page reads; over MAX_UPLOAD_BYTES it is reduced before sending. */
export const MAX_SOURCE_BYTES = 64 * 1024 * 1024;

/**
 * A failed request. `code` is the server's error.code (e.g. "unsupported_media_type"), or one of
 * the client's own: "network_error" (no answer), "bad_response" (an answer that is not the API's
 * JSON) and "http_<status>" (an error status without the API's error body).
 */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

export function isAbortError(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { name?: unknown }).name === 'AbortError';
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

async function request<T>(url: string, init: RequestInit = {}): Promise<T> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, headers: { Accept: 'application/json', ...(init.headers ?? {}) } });
  } catch (e) {
    if (isAbortError(e)) throw e;
    throw new ApiError(0, 'network_error', e instanceof Error ? e.message : String(e));
  }
  const text = await res.text();
  let body: unknown = undefined;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    const err = isRecord(body) && isRecord(body.error) ? body.error : null;
    if (err && typeof err.code === 'string') {
      throw new ApiError(res.status, err.code, typeof err.message === 'string' ? err.message : '');
    }
    throw new ApiError(res.status, `http_${res.status}`, text.slice(0, 200) || res.statusText);
  }
  if (body === undefined) throw new ApiError(res.status, 'bad_response', 'the server answered with no JSON');
  return body as T;
}

function checkSearchResponse(body: SearchResponse): SearchResponse {
  if (!isRecord(body) || !Array.isArray(body.results) || !isRecord(body.query)) {
    throw new ApiError(200, 'bad_response', 'the answer has no results');
  }
  return { ...body, timings_ms: isRecord(body.timings_ms) ? body.timings_ms : {} };
}

/** The JSON sent as the multipart field `options`. */
export function searchOptionsJson(options: SearchOptions): string {
  const out: Record<string, unknown> = { k: options.k, category: options.category };
  const colorWeight = clampColorWeight(options.colorWeight);
  if (colorWeight > 0) out.color_weight = colorWeight;
  const filters = filtersJson(options.filters);
  if (filters) out.filters = filters;
  if (options.crop) {
    const { x, y, w, h } = options.crop;
    out.crop = { x: Math.round(x), y: Math.round(y), w: Math.round(w), h: Math.round(h) };
  }
  return JSON.stringify(out);
}

/** POST /api/v1/search with the photo as multipart field `image`. */
export async function searchImage(image: Blob, options: SearchOptions, signal?: AbortSignal): Promise<SearchResponse> {
  const form = new FormData();
  const name = image instanceof File && image.name ? image.name : 'query.jpg';
  form.append('image', image, name);
  form.append('options', searchOptionsJson(options));
  const body = await request<SearchResponse>('/api/v1/search', { method: 'POST', body: form, signal });
  return checkSearchResponse(body);
}

/** GET /api/v1/items/{id}/similar: search by a catalog item, without uploading anything. */
export async function searchSimilar(
  id: string,
  options: Pick<SearchOptions, 'k' | 'category' | 'colorWeight' | 'filters'>,
  signal?: AbortSignal,
): Promise<SearchResponse> {
  const params = new URLSearchParams({ k: String(options.k), category: options.category });
  const colorWeight = clampColorWeight(options.colorWeight);
  if (colorWeight > 0) params.set('color_weight', String(colorWeight));
  setFilterParams(options.filters, params);
  const url = `/api/v1/items/${encodeURIComponent(id)}/similar?${params.toString()}`;
  return checkSearchResponse(await request<SearchResponse>(url, { signal }));
}

export async function getCategories(signal?: AbortSignal): Promise<Category[]> {
  const body = await request<{ categories?: unknown }>('/api/v1/categories', { signal });
  if (!Array.isArray(body.categories)) throw new ApiError(200, 'bad_response', 'no categories in the answer');
  return body.categories.filter(
    (c): c is Category => isRecord(c) && typeof c.name === 'string' && typeof c.count === 'number',
  );
}

/** A long job on the catalog (an import, the head's training), as GET /api/v1/stats reports it. */
export interface Activity {
  job: string;
  /** "running", "finished", "failed", or "stopped" (interrupted, or its process is gone). */
  state: string;
  /** What it does now, e.g. "epoch 3/12" (server words; the page translates the known ones). */
  phase: string;
  done: number;
  /** 0 when the phase cannot count its progress. */
  total: number;
  eta_seconds: number | null;
  message: string;
  updated_at: number;
}

export interface Stats {
  items: number;
  /** The version answering now: 0 is the frozen recipe, 1+ a head trained on this catalog. */
  model_version: number;
  activity: Activity[];
}

function toActivity(a: unknown): Activity | null {
  if (!isRecord(a) || typeof a.job !== 'string' || typeof a.state !== 'string') return null;
  const count = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);
  return {
    job: a.job,
    state: a.state,
    phase: typeof a.phase === 'string' ? a.phase : '',
    done: count(a.done),
    total: count(a.total),
    eta_seconds: typeof a.eta_seconds === 'number' && Number.isFinite(a.eta_seconds) ? a.eta_seconds : null,
    message: typeof a.message === 'string' ? a.message : '',
    updated_at: count(a.updated_at),
  };
}

export async function getStats(signal?: AbortSignal): Promise<Stats> {
  const body = await request<Record<string, unknown>>('/api/v1/stats', { signal });
  if (!isRecord(body) || typeof body.model_version !== 'number') {
    throw new ApiError(200, 'bad_response', 'no model version in the answer');
  }
  const activity = Array.isArray(body.activity) ? body.activity.map(toActivity) : [];
  return {
    items: typeof body.items === 'number' ? body.items : 0,
    model_version: body.model_version,
    activity: activity.filter((a): a is Activity => a !== null),
  };
}

export async function getItem(id: string, signal?: AbortSignal): Promise<Item> {
  return request<Item>(`/api/v1/items/${encodeURIComponent(id)}`, { signal });
}

/** Whether a file can be sent as a query photo; null when it can, otherwise an error code. */
export function checkImageFile(file: File): 'not_an_image' | 'file_too_large' | 'empty_file' | null {
  // Some systems give no MIME type at all; the server decides for those.
  if (file.type && !file.type.startsWith('image/')) return 'not_an_image';
  if (!file.type && /\.(txt|pdf|json|csv|html?|docx?|xlsx?|zip|mp4|mov|mp3)$/i.test(file.name)) return 'not_an_image';
  if (file.size === 0) return 'empty_file';
  if (file.size > MAX_SOURCE_BYTES) return 'file_too_large';
  return null;
}

export function clampResults(k: number): number {
  if (!Number.isFinite(k)) return 12;
  return Math.min(MAX_RESULTS, Math.max(MIN_RESULTS, Math.round(k)));
}
