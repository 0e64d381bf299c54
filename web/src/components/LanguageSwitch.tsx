import { LANGUAGES, useI18n } from '../i18n';

/** Two toggle buttons; each names its language in that language, so anyone can find theirs. */
export function LanguageSwitch() {
  const { lang, setLang, t } = useI18n();
  return (
    <div className="lang-switch" role="group" aria-label={t('lang.label')}>
      {LANGUAGES.map((l) => (
        <button
          key={l}
          type="button"
          lang={l}
          className={l === lang ? 'lang-btn active' : 'lang-btn'}
          aria-pressed={l === lang}
          onClick={() => setLang(l)}
        >
          {t(l === 'ko' ? 'lang.ko' : 'lang.en')}
        </button>
      ))}
    </div>
  );
}
