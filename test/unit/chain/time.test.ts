import { describe, expect, test } from '@jest/globals';
import { parseNameTime, parseUserTime } from '../../../src/chain/time.js';

describe('parseUserTime', () => {
  test.each(['2026-02-30', '2026-13-01', '2026-00-10', '20260230T000000Z', '20261121T246000Z', '2026-11-21T24:00:00', '2026-11-21T10:60', '02/30/2026', '2026-02-29'])('%s is refused', (t) => {
    expect(() => parseUserTime(t)).toThrow(/bad time/);
  });

  test.each([
    ['2024-02-29T00:00:00Z', Date.UTC(2024, 1, 29) / 1000],
    ['20261121T232154Z', Date.UTC(2026, 10, 21, 23, 21, 54) / 1000],
    ['2026-11-21T10:00:00+01:00', Date.UTC(2026, 10, 21, 9) / 1000],
    ['1700000000', 1700000000],
  ])('%s is %d', (t, want) => {
    expect(parseUserTime(t)).toBe(want);
  });

  test('a file name with an impossible time is not a set name', () => {
    expect(parseNameTime('20260230T000000Z')).toBeUndefined();
    expect(parseNameTime('20260228T000000Z')).toBe(Date.UTC(2026, 1, 28) / 1000);
  });
});
