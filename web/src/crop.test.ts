import { describe, expect, it } from 'vitest';
import { aspectRatio, centredBox, cropToPercent, percentToArea, toSourceCrop, WHOLE_PHOTO } from './crop';

describe('toSourceCrop', () => {
  it('rounds the area to integer source pixels', () => {
    expect(toSourceCrop({ x: 10.4, y: 20.6, width: 50.2, height: 60.4 }, 125, 150)).toEqual({ x: 10, y: 21, w: 50, h: 60 });
    // A box of 125 px at y = 12.5 stays 125 px.
    expect(toSourceCrop({ x: 0, y: 12.5, width: 125, height: 125 }, 125, 150)).toEqual({ x: 0, y: 13, w: 125, h: 125 });
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
  it('uses the photo shape for "original" and no shape for "free"', () => {
    expect(aspectRatio('original', 200, 100)).toBe(2);
    expect(aspectRatio('square', 200, 100)).toBe(1);
    expect(aspectRatio('free', 200, 100)).toBeUndefined();
  });

  it('centres the largest box of a preset shape', () => {
    // A square in a 200 x 100 photo: 100 x 100 px, 50 px in from the left.
    expect(centredBox(1, 200, 100)).toEqual({ x: 25, y: 0, width: 50, height: 100 });
    // A 3:4 box in a 125 x 150 photo: 112.5 x 150 px.
    const tall = centredBox(3 / 4, 125, 150);
    expect(tall.height).toBe(100);
    expect(percentToArea(tall, 125, 150).width).toBeCloseTo(112.5, 9);
    expect(percentToArea(tall, 125, 150).x).toBeCloseTo(6.25, 9);
  });
});

describe('percent boxes', () => {
  it('turn into source pixels and back', () => {
    const crop = { x: 20, y: 30, w: 60, h: 75 };
    const box = cropToPercent(crop, 125, 150);
    expect(box).toEqual({ x: 16, y: 20, width: 48, height: 50 });
    expect(toSourceCrop(percentToArea(box, 125, 150), 125, 150)).toEqual(crop);
  });

  it('gives no crop for the whole photo', () => {
    expect(toSourceCrop(percentToArea(WHOLE_PHOTO, 125, 150), 125, 150)).toBeNull();
  });
});
