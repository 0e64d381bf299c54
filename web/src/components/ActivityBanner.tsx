import type { Activity } from '../api';
import { useI18n, type I18n } from '../i18n';
import { useActivity } from '../useActivity';

/** The server's phase words in the page's language; unknown phases are shown as they are. */
export function phaseText(phase: string, t: I18n['t']): string {
  const epoch = /^epoch (\d+)\/(\d+)$/.exec(phase);
  if (epoch) return t('activity.phase.epoch', { epoch: epoch[1]!, epochs: epoch[2]! });
  const known: [string, Parameters<I18n['t']>[0]][] = [
    ['starting', 'activity.phase.starting'],
    ['importing photos', 'activity.phase.importing'],
    ['measuring colours', 'activity.phase.colours'],
    ['reading the stored descriptors', 'activity.phase.reading'],
    ['learning the PCA-whitening', 'activity.phase.pca'],
    ['cross-validating the category probe', 'activity.phase.probe'],
    ['building the vector index', 'activity.phase.index'],
    ['extracting feature maps', 'activity.phase.maps'],
    ['computing descriptors', 'activity.phase.descriptors'],
  ];
  const match = known.find(([prefix]) => phase.startsWith(prefix));
  return match ? t(match[1]) : phase;
}

/** "45 s", "12 min", "1 h 05 min" (rounded up: an ETA should not promise too much). */
export function durationText(seconds: number, t: I18n['t']): string {
  const s = Math.max(1, Math.ceil(seconds));
  if (s < 60) return t('duration.seconds', { s });
  const minutes = Math.ceil(s / 60);
  if (minutes < 60) return t('duration.minutes', { m: minutes });
  return t('duration.hours', { h: Math.floor(minutes / 60), m: String(minutes % 60).padStart(2, '0') });
}

function JobProgress({ activity, modelVersion }: { activity: Activity; modelVersion: number }) {
  const { t, formatNumber } = useI18n();
  const parts = [phaseText(activity.phase, t)];
  if (activity.total > 0) {
    parts.push(t('activity.progress', { done: formatNumber(activity.done), total: formatNumber(activity.total) }));
  }
  if (activity.eta_seconds !== null) parts.push(t('activity.eta', { time: durationText(activity.eta_seconds, t) }));
  const title = activity.job === 'train' ? t('activity.trainTitle') : t('activity.importTitle');
  return (
    <div className="activity-job" data-testid={`activity-${activity.job}`}>
      <p className="activity-title">{title}</p>
      <p className="activity-phase">{parts.join(' · ')}</p>
      {activity.total > 0 ? (
        <progress className="activity-bar" max={activity.total} value={activity.done} aria-label={title} />
      ) : (
        <progress className="activity-bar" aria-label={title} />
      )}
      {activity.job === 'train' && (
        <p className="activity-note">
          {modelVersion === 0
            ? t('activity.servingFrozen')
            : t('activity.servingVersion', { version: modelVersion })}
        </p>
      )}
    </div>
  );
}

/** What the catalog's long jobs are doing, and which model version answers meanwhile. */
export function ActivityBanner() {
  const { t } = useI18n();
  const { stats, switchedTo, dismissSwitched } = useActivity();
  if (!stats) return null;
  const running = stats.activity.filter((a) => a.state === 'running');
  const failedTraining = stats.activity.find((a) => a.job === 'train' && a.state === 'failed');
  if (running.length === 0 && switchedTo === null && !failedTraining) return null;
  return (
    <section className="activity" aria-label={t('activity.trainTitle')} data-testid="activity">
      {running.map((a) => (
        <JobProgress key={a.job} activity={a} modelVersion={stats.model_version} />
      ))}
      {switchedTo !== null && (
        <div className="activity-switched" role="status" data-testid="activity-switched">
          <span>{t('activity.switched', { version: switchedTo })}</span>
          <button type="button" className="link-button" onClick={dismissSwitched}>
            {t('activity.dismiss')}
          </button>
        </div>
      )}
      {failedTraining && !running.some((a) => a.job === 'train') && (
        <p className="activity-failed" data-testid="activity-failed">
          {t('activity.failed', { message: failedTraining.message })}
        </p>
      )}
    </section>
  );
}
