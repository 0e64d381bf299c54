import { useCallback, useEffect, useRef, useState } from 'react';
import {
  checkImageFile,
  getCategories,
  getFacets,
  isAbortError,
  type Category,
  type Crop,
  type Facets,
  type SearchHit,
} from './api';
import { downscalePhoto, needsDownscale, type Reduction } from './downscale';
import { fileError, type UiError } from './errors';
import { useI18n } from './i18n';
import { loadImageSize } from './imageSize';
import { loadOptions, saveOptions, type StoredOptions } from './storage';
import { useSearches, type Photo, type Source } from './useSearches';
import { ActivityBanner } from './components/ActivityBanner';
import { CropEditor } from './components/CropEditor';
import { ItemDialog } from './components/ItemDialog';
import { LanguageSwitch } from './components/LanguageSwitch';
import { OptionsBar } from './components/OptionsBar';
import { ResultsPanel } from './components/ResultsPanel';
import { UploadPanel } from './components/UploadPanel';

interface Editor {
  photo: Photo;
  /** The crop shown when the editor opens (a search restored from history), else null. */
  initialCrop: Crop | null;
  /** Changes whenever the editor must start over (new photo, restored search). */
  key: number;
}

export function App() {
  const { t } = useI18n();
  const [options, setOptions] = useState<StoredOptions>(loadOptions);
  const [categories, setCategories] = useState<Category[] | null>(null);
  const [categoriesFailed, setCategoriesFailed] = useState(false);
  const [facets, setFacets] = useState<Facets | null>(null);
  const [editor, setEditor] = useState<Editor | null>(null);
  const [uploadError, setUploadError] = useState<UiError | null>(null);
  const [reduction, setReduction] = useState<Reduction | null>(null);
  const [dialog, setDialog] = useState<{ hit: SearchHit; opener: HTMLElement | null } | null>(null);
  const cropDraft = useRef<Crop | null>(null);
  const optionsRef = useRef(options);
  optionsRef.current = options;
  const resultsHeading = useRef<HTMLHeadingElement>(null);
  const editorKey = useRef(0);

  const { view, run, rerun } = useSearches({
    onRestoreUpload: (source) => {
      cropDraft.current = source.crop;
      editorKey.current += 1;
      setEditor({ photo: source.photo, initialCrop: source.crop, key: editorKey.current });
      setUploadError(null);
    },
    onNavigate: () => setDialog(null),
    currentOptions: () => optionsRef.current,
  });

  useEffect(() => {
    const ctl = new AbortController();
    getCategories(ctl.signal).then(
      (list) => {
        setCategories(list);
        // A remembered category the catalog no longer has would only give "not found".
        const remembered = optionsRef.current.category;
        if (remembered !== 'auto' && remembered !== 'all' && !list.some((c) => c.name === remembered)) {
          const next = { ...optionsRef.current, category: 'auto' };
          setOptions(next);
          saveOptions(next);
        }
      },
      (e: unknown) => {
        if (!isAbortError(e)) setCategoriesFailed(true);
      },
    );
    // The filters the catalog offers; without them (an older server) the page has none.
    getFacets(ctl.signal).then(setFacets, () => {});
    return () => ctl.abort();
  }, []);

  const searching = view.kind === 'search' && view.search.status === 'loading';

  const onFile = useCallback(
    async (file: File) => {
      setReduction(null);
      const problem = checkImageFile(file);
      if (problem) {
        setUploadError(fileError(problem, file));
        return;
      }
      let url = URL.createObjectURL(file);
      let size: { width: number; height: number };
      try {
        size = await loadImageSize(url);
      } catch {
        URL.revokeObjectURL(url);
        setUploadError(fileError('image_unreadable', file));
        return;
      }
      let sent = file;
      let reducedFrom: Reduction | null = null;
      if (needsDownscale(file, size)) {
        try {
          const reduced = await downscalePhoto(file, size);
          reducedFrom = { from: { ...size, bytes: file.size }, to: { width: reduced.width, height: reduced.height, bytes: reduced.file.size } };
          URL.revokeObjectURL(url);
          sent = reduced.file;
          url = URL.createObjectURL(sent);
          size = { width: reduced.width, height: reduced.height };
        } catch {
          URL.revokeObjectURL(url);
          setUploadError(fileError('downscale_failed', file));
          return;
        }
      }
      // The crop editor and the search both work on the photo as sent.
      const photo: Photo = { file: sent, url, ...size };
      setUploadError(null);
      setReduction(reducedFrom);
      cropDraft.current = null;
      editorKey.current += 1;
      setEditor({ photo, initialCrop: null, key: editorKey.current });
      run({ kind: 'upload', photo, crop: null }, optionsRef.current, 'push');
    },
    [run],
  );

  const searchCrop = () => {
    if (!editor) return;
    run({ kind: 'upload', photo: editor.photo, crop: cropDraft.current }, optionsRef.current, 'push');
  };

  const changeOptions = (next: StoredOptions) => {
    setOptions(next);
    saveOptions(next);
    rerun(next);
  };

  // Focus can only move back once the page is no longer inert, i.e. after the dialog is gone.
  const focusAfterDialog = useRef<HTMLElement | null>(null);
  useEffect(() => {
    if (dialog || !focusAfterDialog.current) return;
    const target = focusAfterDialog.current.isConnected ? focusAfterDialog.current : resultsHeading.current;
    focusAfterDialog.current = null;
    target?.focus();
  }, [dialog]);

  const moreLikeThis = (hit: SearchHit) => {
    focusAfterDialog.current = resultsHeading.current;
    setDialog(null);
    const source: Source = { kind: 'similar', id: hit.id, item: hit };
    run(source, optionsRef.current, 'push');
    resultsHeading.current?.scrollIntoView?.({ block: 'start' });
  };

  const closeDialog = () => {
    focusAfterDialog.current = dialog?.opener ?? resultsHeading.current;
    setDialog(null);
  };

  return (
    <>
      <div className="app" inert={dialog !== null}>
        <a className="skip-link" href="#results">
          {t('app.skip')}
        </a>
        <header className="site-header">
          <div className="brand">
            <svg className="brand-mark" viewBox="0 0 64 64" aria-hidden="true">
              <rect width="64" height="64" rx="14" fill="currentColor" />
              <circle cx="27" cy="27" r="13" fill="none" stroke="#ffb347" strokeWidth="6" />
              <path d="M37 37l13 13" stroke="#ffb347" strokeWidth="7" strokeLinecap="round" />
            </svg>
            <div>
              <h1 className="brand-name">{t('app.title')}</h1>
              <p className="brand-tagline">{t('app.tagline')}</p>
            </div>
          </div>
          <LanguageSwitch />
        </header>
        <ActivityBanner />
        <main className="layout">
          <aside className="sidebar">
            <UploadPanel hasPhoto={editor !== null} error={uploadError} reduction={reduction} onFile={onFile}>
              {editor && (
                <CropEditor
                  key={editor.key}
                  imageUrl={editor.photo.url}
                  natural={{ width: editor.photo.width, height: editor.photo.height }}
                  initialCrop={editor.initialCrop}
                  busy={searching}
                  onChange={(crop) => {
                    cropDraft.current = crop;
                  }}
                  onSearch={searchCrop}
                />
              )}
            </UploadPanel>
            <OptionsBar
              options={options}
              categories={categories}
              categoriesFailed={categoriesFailed}
              facets={facets}
              onChange={changeOptions}
            />
          </aside>
          <ResultsPanel
            view={view}
            headingRef={resultsHeading}
            onRetry={() => rerun()}
            onOpen={(hit, opener) => setDialog({ hit, opener })}
          />
        </main>
      </div>
      {dialog && <ItemDialog hit={dialog.hit} onClose={closeDialog} onMoreLikeThis={moreLikeThis} />}
    </>
  );
}
