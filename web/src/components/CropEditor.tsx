import { useCallback, useId, useState } from 'react';
import Cropper from 'react-easy-crop';
import type { Crop } from '../api';
import { ASPECTS, aspectForCrop, aspectRatio, cropToArea, toSourceCrop, type AspectChoice, type PixelArea } from '../crop';
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

/**
 * "contain", but also for photos smaller than the stage: react-easy-crop's own "contain" never
 * enlarges, which leaves a 125-px catalog photo tiny. Covering the stage's short side does.
 */
function fitFor(natural: ImageSize): 'horizontal-cover' | 'vertical-cover' {
  return natural.width / natural.height > STAGE_ASPECT ? 'horizontal-cover' : 'vertical-cover';
}

/**
 * The photo with a crop box (react-easy-crop: drag or arrow keys to move the photo under the box,
 * the slider or the wheel to zoom). Reports the box in source pixels, null for the whole photo.
 */
export function CropEditor({ imageUrl, natural, initialCrop, busy, onChange, onSearch }: Props) {
  const { t } = useI18n();
  const id = useId();
  const [position, setPosition] = useState({ x: 0, y: 0 });
  const [zoom, setZoom] = useState(1);
  const [aspect, setAspect] = useState<AspectChoice>(() => aspectForCrop(initialCrop, natural.width, natural.height));
  const [crop, setCrop] = useState<Crop | null>(initialCrop);

  const onCropComplete = useCallback(
    (_percent: PixelArea, pixels: PixelArea) => {
      const next = toSourceCrop(pixels, natural.width, natural.height);
      setCrop(next);
      onChange(next);
    },
    [natural, onChange],
  );

  const reset = () => {
    setAspect('original');
    setZoom(1);
    setPosition({ x: 0, y: 0 });
  };

  const shown = crop ?? { x: 0, y: 0, w: natural.width, h: natural.height };

  return (
    <div className="crop-editor">
      <h3 className="sub-title">{t('crop.heading')}</h3>
      <p className="hint" id={`${id}-help`}>
        {t('crop.help')}
      </p>
      <div className="crop-stage" data-testid="crop-stage">
        <Cropper
          image={imageUrl}
          crop={position}
          zoom={zoom}
          minZoom={1}
          maxZoom={5}
          aspect={aspectRatio(aspect, natural.width, natural.height)}
          objectFit={fitFor(natural)}
          restrictPosition
          showGrid
          roundCropAreaPixels
          keyboardStep={4}
          initialCroppedAreaPixels={initialCrop ? cropToArea(initialCrop) : undefined}
          onCropChange={setPosition}
          onZoomChange={setZoom}
          onCropComplete={onCropComplete}
          mediaProps={{ alt: t('upload.previewAlt') }}
          cropperProps={{ 'aria-label': t('crop.area'), 'aria-describedby': `${id}-help` }}
        />
      </div>
      <div className="crop-controls">
        <label className="field field-zoom">
          <span className="field-label">{t('crop.zoom')}</span>
          <input
            type="range"
            min={1}
            max={5}
            step={0.05}
            value={zoom}
            onChange={(e) => setZoom(Number(e.currentTarget.value))}
            aria-valuetext={`${Math.round(zoom * 100)}%`}
          />
        </label>
        <label className="field field-aspect">
          <span className="field-label">{t('crop.aspect')}</span>
          <select value={aspect} onChange={(e) => setAspect(e.currentTarget.value as AspectChoice)}>
            {ASPECTS.map((a) => (
              <option key={a} value={a}>
                {t(`crop.aspect.${a}`)}
              </option>
            ))}
          </select>
        </label>
      </div>
      <p className="crop-size" data-testid="crop-size" data-crop={crop ? `${crop.x},${crop.y},${crop.w},${crop.h}` : ''}>
        {t('crop.size', { w: shown.w, h: shown.h, W: natural.width, H: natural.height })}
      </p>
      <div className="crop-actions">
        <button type="button" className="btn btn-primary" onClick={onSearch} disabled={busy}>
          {crop ? t('crop.search') : t('crop.searchWhole')}
        </button>
        <button type="button" className="btn btn-ghost" onClick={reset} disabled={!crop && zoom === 1 && aspect === 'original'}>
          {t('crop.reset')}
        </button>
      </div>
    </div>
  );
}
