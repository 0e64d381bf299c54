import { useEffect, useId, useRef, useState, type DragEvent, type ReactNode } from 'react';
import { MAX_SOURCE_BYTES, MAX_UPLOAD_BYTES } from '../api';
import { MAX_SIDE, type Reduction } from '../downscale';
import { useI18n } from '../i18n';
import { megabytes, type UiError } from '../errors';
import { ErrorMessage } from './ErrorMessage';

interface Props {
  hasPhoto: boolean;
  error: UiError | null;
  /** How the photo was reduced in the browser before it was sent, or null. */
  reduction?: Reduction | null;
  onFile: (file: File) => void;
  /** The crop editor, shown once there is a photo. */
  children?: ReactNode;
}

function firstFile(list: DataTransfer | null): File | null {
  if (!list) return null;
  if (list.files && list.files.length > 0) return list.files[0] ?? null;
  for (const item of Array.from(list.items ?? [])) {
    if (item.kind === 'file') {
      const f = item.getAsFile();
      if (f) return f;
    }
  }
  return null;
}

/** Drag & drop, file picker and paste; every way ends in onFile(file). */
export function UploadPanel({ hasPhoto, error, reduction = null, onFile, children }: Props) {
  const { t, formatNumber } = useI18n();
  const inputId = useId();
  const inputRef = useRef<HTMLInputElement>(null);
  const [dragging, setDragging] = useState(false);
  const dragDepth = useRef(0);
  const onFileRef = useRef(onFile);
  onFileRef.current = onFile;

  // Paste a photo anywhere on the page; a paste without a file (text into a field) is left alone.
  useEffect(() => {
    const onPaste = (e: ClipboardEvent) => {
      const file = firstFile(e.clipboardData);
      if (!file) return;
      e.preventDefault();
      onFileRef.current(file);
    };
    // A photo dropped outside the drop zone must not make the browser navigate away to it.
    const stop = (e: globalThis.DragEvent) => {
      if (e.dataTransfer?.types?.includes('Files')) e.preventDefault();
    };
    window.addEventListener('paste', onPaste);
    window.addEventListener('dragover', stop);
    window.addEventListener('drop', stop);
    return () => {
      window.removeEventListener('paste', onPaste);
      window.removeEventListener('dragover', stop);
      window.removeEventListener('drop', stop);
    };
  }, []);

  const onDragEnter = (e: DragEvent) => {
    e.preventDefault();
    dragDepth.current += 1;
    setDragging(true);
  };
  const onDragLeave = (e: DragEvent) => {
    e.preventDefault();
    dragDepth.current = Math.max(0, dragDepth.current - 1);
    if (dragDepth.current === 0) setDragging(false);
  };
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    e.stopPropagation();
    dragDepth.current = 0;
    setDragging(false);
    const file = firstFile(e.dataTransfer);
    if (file) onFile(file);
  };

  return (
    <section className="panel upload-panel" aria-labelledby={`${inputId}-heading`}>
      <h2 id={`${inputId}-heading`} className="panel-title">
        {t('upload.heading')}
      </h2>
      {hasPhoto && children}
      <div
        className={`dropzone${dragging ? ' dragging' : ''}${hasPhoto ? ' compact' : ''}`}
        data-testid="dropzone"
        onDragEnter={onDragEnter}
        onDragOver={(e) => {
          e.preventDefault();
          e.dataTransfer.dropEffect = 'copy';
        }}
        onDragLeave={onDragLeave}
        onDrop={onDrop}
      >
        {!hasPhoto && (
          <svg className="dropzone-icon" viewBox="0 0 48 48" aria-hidden="true">
            <rect x="6" y="10" width="36" height="28" rx="4" fill="none" stroke="currentColor" strokeWidth="2.5" />
            <circle cx="17" cy="20" r="3.5" fill="currentColor" />
            <path d="M9 35l10-10 7 7 5-5 8 8" fill="none" stroke="currentColor" strokeWidth="2.5" strokeLinejoin="round" />
          </svg>
        )}
        <p className="dropzone-text">{dragging ? t('upload.dropActive') : hasPhoto ? null : t('upload.drop')}</p>
        {!hasPhoto && !dragging && <p className="dropzone-or">{t('upload.or')}</p>}
        <input
          ref={inputRef}
          id={inputId}
          className="visually-hidden"
          type="file"
          accept="image/*"
          aria-label={t('upload.inputLabel')}
          data-testid="file-input"
          onChange={(e) => {
            const file = e.currentTarget.files?.[0];
            // Reset so choosing the same file again still fires a change.
            e.currentTarget.value = '';
            if (file) onFile(file);
          }}
        />
        <button type="button" className="btn btn-primary" onClick={() => inputRef.current?.click()}>
          {hasPhoto ? t('upload.replace') : t('upload.choose')}
        </button>
        {!hasPhoto && (
          <p className="dropzone-hint">
            {t('upload.paste')}
            <br />
            {t('upload.limits', {
              max: MAX_SOURCE_BYTES / (1024 * 1024),
              send: MAX_UPLOAD_BYTES / (1024 * 1024),
              side: formatNumber(MAX_SIDE),
            })}
          </p>
        )}
      </div>
      {reduction && (
        <p className="upload-notice" role="status" data-testid="upload-notice">
          {t('upload.downscaled', {
            from: `${formatNumber(reduction.from.width)} × ${formatNumber(reduction.from.height)}`,
            fromMb: megabytes(reduction.from.bytes),
            to: `${formatNumber(reduction.to.width)} × ${formatNumber(reduction.to.height)}`,
            toMb: megabytes(reduction.to.bytes),
          })}
        </p>
      )}
      {error && <ErrorMessage error={error} className="upload-error" />}
    </section>
  );
}
