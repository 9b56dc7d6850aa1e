import { describe, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { escapeName, unescapeName } from '../../../src/util/escape-name.js';

describe('escapeName', () => {
  test.each([
    ['plain.txt', 'plain.txt'],
    ['two\nlines', 'two\\nlines'],
    ['cr\rtab\t', 'cr\\rtab\\t'],
    ['back\\slash', 'back\\\\slash'],
    ['héllo 日本', 'héllo 日本'],
  ])('%j -> %j', (name, want) => {
    expect(escapeName(Buffer.from(name))).toBe(want);
  });

  test('invalid UTF-8, controls and C1 controls become \\xHH; the result is one printable line', () => {
    expect(escapeName(Buffer.from([0x62, 0xff, 0xfe, 0x01, 0x7f, 0xc2, 0x85, 0xe2, 0x82]))).toBe('b\\xff\\xfe\\x01\\x7f\\xc2\\x85\\xe2\\x82');
  });

  test('round-trips any bytes, and the escaped form holds no control character', () => {
    for (let i = 0; i < 2000; i++) {
      const b = randomBytes(1 + (i % 40));
      const e = escapeName(b);
      expect(/[\x00-\x1f\x7f\u0080-\u009f]/.test(e)).toBe(false);
      expect(unescapeName(e)!.equals(b)).toBe(true);
    }
  });

  test('a malformed escape is not a name', () => {
    expect(unescapeName('a\\q')).toBeUndefined();
    expect(unescapeName('a\\x4')).toBeUndefined();
    expect(unescapeName('trailing\\')).toBeUndefined();
  });
});
