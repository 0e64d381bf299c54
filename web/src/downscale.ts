// Photos over the server's upload limit or over MAX_SIDE pixels are reduced in the browser
// before they are sent: a phone's 12-50 MP photo searches as well at 4,000 px (the CNN sees 299),
// uploads in a fraction of the time, and would otherwise be refused (413) or rejected by the
// server's frame limit.
import { MAX_UPLOAD_BYTES } from './api';

/** The longest side a photo is sent with. */
export const MAX_SIDE = 4000;

export interface Size {
  width: number;
  height: number;
}

/** What a reduction did, for the page to say (sizes in pixels, bytes). */
export interface Reduction {
  from: Size & { bytes: number };
  to: Size & { bytes: number };
}

/** The size within `maxSide` on the longer side, aspect kept; the size itself when it fits. */
export function fitWithin(size: Size, maxSide = MAX_SIDE): Size {
  const scale = Math.min(1, maxSide / Math.max(size.width, size.height));
  return { width: Math.max(1, Math.round(size.width * scale)), height: Math.max(1, Math.round(size.height * scale)) };
}

export function needsDownscale(file: Blob, size: Size): boolean {
  return file.size > MAX_UPLOAD_BYTES || Math.max(size.width, size.height) > MAX_SIDE;
}

function jpegName(name: string): string {
  const base = name.replace(/\.[^./\\]*$/, '') || 'photo';
  return `${base}.jpg`;
}

async function encode(bitmap: ImageBitmap, size: Size, quality: number): Promise<Blob> {
  const canvas = document.createElement('canvas');
  canvas.width = size.width;
  canvas.height = size.height;
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new Error('the browser has no 2D canvas');
  // JPEG has no transparency: a transparent PNG becomes white there, not black.
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, size.width, size.height);
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(bitmap, 0, 0, size.width, size.height);
  const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, 'image/jpeg', quality));
  if (!blob) throw new Error('the browser could not encode the reduced photo');
  return blob;
}

/**
 * The photo as a JPEG within MAX_SIDE and the upload limit: first at MAX_SIDE and quality 0.9,
 * then smaller (70% a step) until it fits. Throws when the browser cannot decode or encode it.
 */
export async function downscalePhoto(file: File, size: Size): Promise<{ file: File } & Size> {
  const bitmap = await createImageBitmap(file);
  try {
    let target = fitWithin(size);
    for (let attempt = 0; attempt < 5; attempt++) {
      const blob = await encode(bitmap, target, 0.9);
      if (blob.size <= MAX_UPLOAD_BYTES) {
        return { file: new File([blob], jpegName(file.name), { type: 'image/jpeg' }), ...target };
      }
      target = fitWithin(target, Math.round(Math.max(target.width, target.height) * 0.7));
    }
    throw new Error('the photo could not be made small enough');
  } finally {
    bitmap.close();
  }
}
