import type { Crop } from './api';

export interface PixelArea {
  x: number;
  y: number;
  width: number;
  height: number;
}

export type AspectChoice = 'original' | 'square' | 'portrait' | 'landscape';

export const ASPECTS: readonly AspectChoice[] = ['original', 'square', 'portrait', 'landscape'];

export function aspectRatio(choice: AspectChoice, naturalWidth: number, naturalHeight: number): number {
  switch (choice) {
    case 'square':
      return 1;
    case 'portrait':
      return 3 / 4;
    case 'landscape':
      return 4 / 3;
    default:
      return naturalWidth > 0 && naturalHeight > 0 ? naturalWidth / naturalHeight : 1;
  }
}

/** The preset whose ratio is nearest to the crop's; used to show a restored crop with the same box. */
export function aspectForCrop(crop: Crop | null, naturalWidth: number, naturalHeight: number): AspectChoice {
  if (!crop) return 'original';
  const ratio = crop.w / crop.h;
  let best: AspectChoice = 'original';
  let bestDiff = Infinity;
  for (const a of ASPECTS) {
    const diff = Math.abs(Math.log(aspectRatio(a, naturalWidth, naturalHeight) / ratio));
    if (diff < bestDiff) {
      best = a;
      bestDiff = diff;
    }
  }
  return best;
}

/**
 * The cropper's area (natural image pixels, possibly fractional or slightly outside the image)
 * as the integer source-pixel rectangle the server takes; null when it is the whole photo.
 */
export function toSourceCrop(area: PixelArea, naturalWidth: number, naturalHeight: number): Crop | null {
  if (!(naturalWidth > 0 && naturalHeight > 0)) return null;
  const x0 = Math.min(naturalWidth - 1, Math.max(0, Math.round(area.x)));
  const y0 = Math.min(naturalHeight - 1, Math.max(0, Math.round(area.y)));
  const x1 = Math.min(naturalWidth, Math.max(x0 + 1, Math.round(area.x + area.width)));
  const y1 = Math.min(naturalHeight, Math.max(y0 + 1, Math.round(area.y + area.height)));
  const crop = { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
  const whole = crop.x <= 1 && crop.y <= 1 && crop.w >= naturalWidth - 2 && crop.h >= naturalHeight - 2;
  return whole ? null : crop;
}

export function cropToArea(crop: Crop): PixelArea {
  return { x: crop.x, y: crop.y, width: crop.w, height: crop.h };
}
