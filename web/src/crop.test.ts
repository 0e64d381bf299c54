import { describe, expect, it } from 'vitest';
import { aspectForCrop, aspectRatio, toSourceCrop } from './crop';

describe('toSourceCrop', () => {
  it('rounds the area to integer source pixels', () => {
    expect(toSourceCrop({ x: 10.4, y: 20.6, width: 50.2, height: 60.4 }, 125, 150)).toEqual({ x: 10, y: 21, w: 51, h: 60 });
  });

  it('keeps the box inside the photo', () => {
    expect(toSourceCrop({ x: -3, y: 140, width: 40, height: 30 }, 125, 150)).toEqual({ x: 0, y: 140, w: 37, h: 10 });
  });

  it('gives null for (nearly) the whole photo, so no crop is sent', () => {
    expect(toSourceCrop({ x: 0, y: 0, width: 125, height: 150 }, 125, 150)).toBeNull();
    expect(toSourceCrop({ x: 0.6, y: 0, width: 124, height: 149 }, 125, 150)).toBeNull();
    expect(toSourceCrop({ x: 0, y: 0, width: 120, height: 150 }, 125, 150)).not.toBeNull();
  });

  it('never gives an empty box', () => {
    const crop = toSourceCrop({ x: 124.9, y: 149.9, width: 0.01, height: 0.01 }, 125, 150);
    expect(crop).toEqual({ x: 124, y: 149, w: 1, h: 1 });
  });
});

describe('aspects', () => {
  it('uses the photo shape for "original"', () => {
    expect(aspectRatio('original', 200, 100)).toBe(2);
    expect(aspectRatio('square', 200, 100)).toBe(1);
  });

  it('finds the box shape of a restored crop', () => {
    expect(aspectForCrop({ x: 0, y: 0, w: 30, h: 40 }, 125, 150)).toBe('portrait');
    expect(aspectForCrop({ x: 0, y: 0, w: 50, h: 50 }, 125, 150)).toBe('square');
    expect(aspectForCrop(null, 125, 150)).toBe('original');
  });
});
