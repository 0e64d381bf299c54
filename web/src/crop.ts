import type { Crop } from './api';

/** A rectangle in the photo's natural pixels, possibly fractional. */
export interface PixelArea {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** A rectangle in percent of the photo's width and height (react-image-crop's '%' unit). */
export interface PercentBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

export type AspectChoice = 'free' | 'original' | 'square' | 'portrait' | 'landscape';

export const ASPECTS: readonly AspectChoice[] = ['free', 'original', 'square', 'portrait', 'landscape'];

export const WHOLE_PHOTO: PercentBox = { x: 0, y: 0, width: 100, height: 100 };

/** The box's width / height for a preset; undefined for a free-form box. */
export function aspectRatio(choice: AspectChoice, naturalWidth: number, naturalHeight: number): number | undefined {
  switch (choice) {
    case 'free':
      return undefined;
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

/** The largest box of the given shape (width / height in pixels), centred on the photo. */
export function centredBox(ratio: number, naturalWidth: number, naturalHeight: number): PercentBox {
  const w = Math.min(naturalWidth, naturalHeight * ratio);
  const h = w / ratio;
  return {
    x: ((naturalWidth - w) / 2 / naturalWidth) * 100,
    y: ((naturalHeight - h) / 2 / naturalHeight) * 100,
    width: (w / naturalWidth) * 100,
    height: (h / naturalHeight) * 100,
  };
}

export function percentToArea(box: PercentBox, naturalWidth: number, naturalHeight: number): PixelArea {
  return {
    x: (box.x / 100) * naturalWidth,
    y: (box.y / 100) * naturalHeight,
    width: (box.width / 100) * naturalWidth,
    height: (box.height / 100) * naturalHeight,
  };
}

/** A crop in source pixels shown again as a box (coming back to an earlier search). */
export function cropToPercent(crop: Crop, naturalWidth: number, naturalHeight: number): PercentBox {
  return {
    x: (crop.x / naturalWidth) * 100,
    y: (crop.y / naturalHeight) * 100,
    width: (crop.w / naturalWidth) * 100,
    height: (crop.h / naturalHeight) * 100,
  };
}

/**
 * The cropper's area (natural image pixels, possibly fractional or slightly outside the image)
 * as the integer source-pixel rectangle the server takes; null when it is the whole photo. The
 * area is clipped to the photo first; then its start and its size are rounded (not both ends, which
 * would turn a centred 125-px box at y = 12.5 into 126 px).
 */
export function toSourceCrop(area: PixelArea, naturalWidth: number, naturalHeight: number): Crop | null {
  if (!(naturalWidth > 0 && naturalHeight > 0)) return null;
  const [x, w] = roundSpan(area.x, area.width, naturalWidth);
  const [y, h] = roundSpan(area.y, area.height, naturalHeight);
  const whole = x <= 1 && y <= 1 && w >= naturalWidth - 2 && h >= naturalHeight - 2;
  return whole ? null : { x, y, w, h };
}

/** [start, length) clipped to [0, limit), as integers, never empty. */
function roundSpan(start: number, length: number, limit: number): [number, number] {
  const from = Math.max(0, start);
  const to = Math.min(limit, start + length);
  const first = Math.min(limit - 1, Math.round(from));
  return [first, Math.max(1, Math.min(limit - first, Math.round(to - from)))];
}
