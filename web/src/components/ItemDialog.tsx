import { useEffect, useId, useRef, type KeyboardEvent, type ReactNode } from 'react';
import { shownSimilarity, type SearchHit } from '../api';
import { useI18n } from '../i18n';
import { itemName } from './ResultCard';

interface Props {
  hit: SearchHit;
  onClose: () => void;
  onMoreLikeThis: (hit: SearchHit) => void;
}

const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

/** Only http(s) links are shown: a catalog URL like javascript:... must never become a link. */
export function safeUrl(url: string | undefined): string | null {
  if (!url) return null;
  try {
    const u = new URL(url, window.location.href);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch {
    return null;
  }
}

function MetaRow({ label, mono = false, children }: { label: string; mono?: boolean; children: ReactNode }) {
  return (
    <div className="meta-row">
      <dt>{label}</dt>
      <dd className={mono ? 'mono' : undefined}>{children}</dd>
    </div>
  );
}

function attributeText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

/**
 * A modal dialog: focus moves into it and stays there (Tab wraps around), Escape or the backdrop
 * closes it, and the page behind is inert. The caller gives focus back to the card that opened it.
 */
export function ItemDialog({ hit, onClose, onMoreLikeThis }: Props) {
  const { t, categoryName, formatPercent, formatNumber } = useI18n();
  const titleId = useId();
  const ref = useRef<HTMLDivElement>(null);
  const closeRef = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    closeRef.current?.focus();
    const previous = document.body.style.overflow;
    document.body.style.overflow = 'hidden';
    return () => {
      document.body.style.overflow = previous;
    };
  }, []);

  const onKeyDown = (e: KeyboardEvent<HTMLDivElement>) => {
    if (e.key === 'Escape') {
      e.stopPropagation();
      onClose();
      return;
    }
    if (e.key !== 'Tab' || !ref.current) return;
    const items = Array.from(ref.current.querySelectorAll<HTMLElement>(FOCUSABLE));
    if (items.length === 0) return;
    const first = items[0]!;
    const last = items[items.length - 1]!;
    const active = document.activeElement;
    if (e.shiftKey && (active === first || !ref.current.contains(active))) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && (active === last || !ref.current.contains(active))) {
      e.preventDefault();
      first.focus();
    }
  };

  const link = safeUrl(hit.metadata?.url);
  const price = hit.metadata?.price;
  const attributes = Object.entries(hit.metadata?.attributes ?? {});

  return (
    <div className="dialog-backdrop" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div
        ref={ref}
        className="dialog"
        role="dialog"
        aria-modal="true"
        aria-labelledby={titleId}
        onKeyDown={onKeyDown}
        data-testid="item-dialog"
      >
        <button ref={closeRef} type="button" className="dialog-close" aria-label={t('dialog.close')} onClick={onClose}>
          <svg viewBox="0 0 24 24" aria-hidden="true">
            <path d="M6 6l12 12M18 6L6 18" stroke="currentColor" strokeWidth="2.2" strokeLinecap="round" />
          </svg>
        </button>
        <div className="dialog-image">
          <img src={hit.image_url} alt={t('card.imageAlt', { category: categoryName(hit.category), id: hit.id })} />
        </div>
        <div className="dialog-body">
          <p className="dialog-kicker">{t('dialog.title')}</p>
          <h2 id={titleId} className="dialog-title">
            {itemName(hit)}
          </h2>
          <dl className="meta">
            <MetaRow label={t('dialog.category')}>{categoryName(hit.category)}</MetaRow>
            <MetaRow label={t('dialog.score')}>{formatPercent(shownSimilarity(hit))}</MetaRow>
            <MetaRow label={t('dialog.cosine')}>{formatNumber(hit.score, 3)}</MetaRow>
            {price !== null && price !== undefined && <MetaRow label={t('dialog.price')}>{formatNumber(price, 2)}</MetaRow>}
            <MetaRow label={t('dialog.id')} mono>
              {hit.id}
            </MetaRow>
            {hit.width > 0 && hit.height > 0 && (
              <MetaRow label={t('dialog.size')}>
                {hit.width} × {hit.height} px
              </MetaRow>
            )}
            {attributes.map(([name, value]) => (
              <MetaRow key={name} label={name}>
                {attributeText(value)}
              </MetaRow>
            ))}
          </dl>
          <div className="dialog-actions">
            <button type="button" className="btn btn-primary" onClick={() => onMoreLikeThis(hit)} data-testid="more-like-this">
              {t('dialog.more')}
            </button>
            {link && (
              <a className="btn btn-secondary" href={link} target="_blank" rel="noopener noreferrer">
                {t('dialog.link')}
              </a>
            )}
          </div>
        </div>
      </div>
    </div>
  );
}
