import { useCallback, useId, useMemo, useState } from 'react';
import ReactCrop, { type PercentCrop, type ReactCropProps } from 'react-image-crop';
import 'react-image-crop/dist/ReactCrop.css';
import type { Crop } from '../api';
import { ASPECTS, aspectRatio, centredBox, cropToPercent, percentToArea, toSourceCrop, WHOLE_PHOTO, type AspectChoice, type PercentBox } from '../crop';
import { useI18n } from '../i18n';

export interface ImageSize {
  width: number;
  height: number;
}

interface Props {
  imageUrl: string;
  /** The photo's natural size, measured before the editor is shown. */
  natural: ImageSize;
  /** A crop to show again (coming back to an earlier search); null: the whole photo. */
  initialCrop: Crop | null;
  busy: boolean;
  onChange: (crop: Crop | null) => void;
  onSearch: () => void;
}

/** The stage's shape (width / height); keep in step with .crop-stage in styles.css. */
export const STAGE_ASPECT = 5 / 4;

const HANDLES = ['nw', 'n', 'ne', 'e', 'se', 's', 'sw', 'w'] as const;

const asPercentCrop = (box: PercentBox): PercentCrop => ({ unit: '%', ...box });

/**
 * The photo with a crop box (react-image-crop): drag the box's corners and edges to any shape, or
 * inside it to move it; the arrow keys move the focused box or resize from a focused handle. The
 * box starts as the whole photo, so keyboard users have something to focus. Reports the box in
 * source pixels, null for the whole photo.
 */
export function CropEditor({ imageUrl, natural, initialCrop, busy, onChange, onSearch }: Props) {
  const { t } = useI18n();
  const id = useId();
  const { width: W, height: H } = natural;
  const [aspect, setAspect] = useState<AspectChoice>('free');
  const [box, setBox] = useState<PercentBox>(() => (initialCrop ? cropToPercent(initialCrop, W, H) : WHOLE_PHOTO));
  const [crop, setCrop] = useState<Crop | null>(initialCrop);

  const report = useCallback(
    (next: PercentBox) => {
      const sourceCrop = toSourceCrop(percentToArea(next, W, H), W, H);
      setCrop(sourceCrop);
      onChange(sourceCrop);
    },
    [W, H, onChange],
  );

  // A preset shape replaces the box with the largest centred one of that shape; "free" keeps it.
  const chooseAspect = (choice: AspectChoice) => {
    setAspect(choice);
    const ratio = aspectRatio(choice, W, H);
    if (ratio === undefined) return;
    const next = centredBox(ratio, W, H);
    setBox(next);
    report(next);
  };

  const reset = () => {
    setAspect('free');
    setBox(WHOLE_PHOTO);
    report(WHOLE_PHOTO);
  };

  const ariaLabels = useMemo(
    () => ({
      cropArea: t('crop.area'),
      ...Object.fromEntries(HANDLES.map((h) => [`${h}DragHandle`, t(`crop.handle.${h}`)])),
    }) as ReactCropProps['ariaLabels'],
    [t],
  );

  const shown = crop ?? { x: 0, y: 0, w: W, h: H };
  // Fit the photo to the stage's long side, enlarging small catalog photos too.
  const fit = W / H > STAGE_ASPECT ? 'crop-photo-wide' : 'crop-photo-tall';

  return (
    <div className="crop-editor">
      <h3 className="sub-title">{t('crop.heading')}</h3>
      <p className="hint" id={`${id}-help`}>
        {t('crop.help')}
      </p>
      <div className="crop-stage" data-testid="crop-stage" aria-describedby={`${id}-help`}>
        <ReactCrop
          crop={asPercentCrop(box)}
          aspect={aspectRatio(aspect, W, H)}
          keepSelection
          ruleOfThirds
          minWidth={8}
          minHeight={8}
          ariaLabels={ariaLabels}
          onChange={(_pixels, percent) => setBox(percent)}
          onComplete={(_pixels, percent) => report(percent)}
        >
          <img src={imageUrl} alt={t('upload.previewAlt')} className={fit} draggable={false} />
        </ReactCrop>
      </div>
      <div className="crop-controls">
        <label className="field field-aspect">
          <span className="field-label">{t('crop.aspect')}</span>
          <select value={aspect} onChange={(e) => chooseAspect(e.currentTarget.value as AspectChoice)}>
            {ASPECTS.map((a) => (
              <option key={a} value={a}>
                {t(`crop.aspect.${a}`)}
              </option>
            ))}
          </select>
        </label>
      </div>
      <p className="crop-size" data-testid="crop-size" data-crop={crop ? `${crop.x},${crop.y},${crop.w},${crop.h}` : ''}>
        {t('crop.size', { w: shown.w, h: shown.h, W, H })}
      </p>
      <div className="crop-actions">
        <button type="button" className="btn btn-primary" onClick={onSearch} disabled={busy}>
          {crop ? t('crop.search') : t('crop.searchWhole')}
        </button>
        <button type="button" className="btn btn-ghost" onClick={reset} disabled={!crop && aspect === 'free'}>
          {t('crop.reset')}
        </button>
      </div>
    </div>
  );
}
