import { useI18n } from '../i18n';
import { errorText, type UiError } from '../errors';

interface Props {
  error: UiError;
  title?: boolean;
  onRetry?: () => void;
  className?: string;
}

/** A translated error, the server's own message under it, and an optional retry button. */
export function ErrorMessage({ error, title = false, onRetry, className = '' }: Props) {
  const i18n = useI18n();
  return (
    <div className={`error-box ${className}`} role="alert" data-error-code={error.code}>
      <svg className="error-icon" viewBox="0 0 24 24" aria-hidden="true">
        <circle cx="12" cy="12" r="10" fill="currentColor" opacity="0.15" />
        <path d="M12 7v6M12 16.5v.5" stroke="currentColor" strokeWidth="2.2" strokeLinecap="round" />
      </svg>
      <div className="error-body">
        {title && <p className="error-title">{i18n.t('error.title')}</p>}
        <p className="error-text">{errorText(i18n, error)}</p>
        {error.detail && (
          <p className="error-detail">{i18n.t('error.detail', { message: error.detail })}</p>
        )}
        {onRetry && (
          <button type="button" className="btn btn-secondary" onClick={onRetry}>
            {i18n.t('results.retry')}
          </button>
        )}
      </div>
    </div>
  );
}
