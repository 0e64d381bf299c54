import { describe, expect, it } from 'vitest';
import { parseLocation, readState, SeqCounter, urlFor } from './navigation';

describe('navigation', () => {
  it('writes and reads the URL of each kind of search', () => {
    expect(urlFor({ app: 'lookalike', seq: 3, kind: 'upload' })).toBe('?search=3');
    expect(urlFor({ app: 'lookalike', seq: 4, kind: 'similar', id: 'coat 12&x' })).toBe('?similar=coat+12%26x');
    expect(parseLocation('?similar=coat+12%26x')).toEqual({ kind: 'similar', id: 'coat 12&x' });
    expect(parseLocation('?search=3')).toEqual({ kind: 'upload', seq: 3 });
    expect(parseLocation('?search=abc')).toBeNull();
    expect(parseLocation('')).toBeNull();
  });

  it('accepts only its own history states', () => {
    expect(readState({ app: 'lookalike', seq: 2, kind: 'upload' })).toEqual({ app: 'lookalike', seq: 2, kind: 'upload' });
    expect(readState({ app: 'lookalike', seq: 2, kind: 'similar' })).toBeNull();
    expect(readState({ seq: 2, kind: 'upload' })).toBeNull();
    expect(readState(null)).toBeNull();
    expect(readState('x')).toBeNull();
  });

  it('numbers searches above any it has seen', () => {
    const c = new SeqCounter();
    expect(c.next()).toBe(1);
    c.observe(10);
    expect(c.next()).toBe(11);
    c.observe(4);
    expect(c.next()).toBe(12);
  });
});
