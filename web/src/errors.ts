import { ApiError, MAX_SOURCE_BYTES, MAX_UPLOAD_BYTES } from './api';
import type { I18n, MessageKey, Params } from './i18n';
import { MESSAGES } from './i18n/messages';

/** An error as the page shows it: a code with its own translated text, plus the server's words. */
export interface UiError {
  code: string;
  /** The server's error.message, shown verbatim under the translated text. */
  detail?: string;
  params?: Params;
}

export function errorFromException(e: unknown): UiError {
  if (e instanceof ApiError) return { code: e.code, detail: e.message || undefined };
  return { code: 'bad_response', detail: e instanceof Error ? e.message : String(e) };
}

export function megabytes(n: number): string {
  return (Math.round((n / (1024 * 1024)) * 10) / 10).toString();
}

export function fileError(
  code: 'not_an_image' | 'file_too_large' | 'empty_file' | 'image_unreadable' | 'downscale_failed',
  file: File,
): UiError {
  return { code, params: { size: megabytes(file.size), max: megabytes(MAX_SOURCE_BYTES), name: file.name } };
}

export function errorText(i18n: Pick<I18n, 't'>, err: UiError): string {
  const key = `error.${err.code}` as MessageKey;
  if (key in MESSAGES.en) return i18n.t(key, { max: MAX_UPLOAD_BYTES / (1024 * 1024), ...err.params });
  return i18n.t('error.generic', { code: err.code });
}

/** Whether trying the same request again can help (and so a retry button is worth showing). */
export function isRetryable(err: UiError): boolean {
  return ['network_error', 'not_ready', 'internal', 'bad_response', 'corrupt_store'].includes(err.code) || /^http_5\d\d$/.test(err.code);
}
