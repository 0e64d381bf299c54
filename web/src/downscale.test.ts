import { describe, expect, it } from 'vitest';
import { MAX_UPLOAD_BYTES } from './api';
import { fitWithin, MAX_SIDE, needsDownscale } from './downscale';

const blob = (bytes: number) => ({ size: bytes }) as Blob;

describe('downscale', () => {
  it('fits the longer side within the limit and keeps the aspect', () => {
    expect(fitWithin({ width: 6000, height: 4500 })).toEqual({ width: 4000, height: 3000 });
    expect(fitWithin({ width: 3000, height: 9000 })).toEqual({ width: 1333, height: 4000 });
    expect(fitWithin({ width: 800, height: 600 })).toEqual({ width: 800, height: 600 });
    expect(fitWithin({ width: 100000, height: 1 })).toEqual({ width: MAX_SIDE, height: 1 });
    expect(fitWithin({ width: 4000, height: 3000 }, 2800)).toEqual({ width: 2800, height: 2100 });
  });

  it('reduces photos over the upload limit or over 4,000 px, and only those', () => {
    expect(needsDownscale(blob(1000), { width: 800, height: 600 })).toBe(false);
    expect(needsDownscale(blob(MAX_UPLOAD_BYTES), { width: 4000, height: 4000 })).toBe(false);
    expect(needsDownscale(blob(MAX_UPLOAD_BYTES + 1), { width: 800, height: 600 })).toBe(true);
    expect(needsDownscale(blob(1000), { width: 4001, height: 10 })).toBe(true);
  });
});
