import { describe, expect, test } from '@jest/globals';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { CfbDecryptor } from '../../../src/crypto/cfb-decrypt.js';

describe('CFB decryption through ECB', () => {
  test.each([
    ['aes-256', 32],
    ['aes-128', 16],
    ['camellia-256', 32],
  ])('%s: equals the CFB decipher for any chunking, alignment and length', (name, keyLen) => {
    const key = randomBytes(keyLen);
    const iv = randomBytes(16);
    for (const len of [0, 1, 15, 16, 17, 4096, 100_003]) {
      const plain = randomBytes(len);
      const c = createCipheriv(`${name}-cfb`, key, iv);
      const ct = Buffer.concat([c.update(plain), c.final()]);
      const ref = createDecipheriv(`${name}-cfb`, key, iv);
      expect(Buffer.concat([ref.update(ct), ref.final()]).equals(plain)).toBe(true);
      for (const step of [1, 7, 16, 333, 65536]) {
        for (const shift of [0, 1, 3]) {
          // chunks at odd offsets of a larger buffer, as packet bodies arrive
          const host = Buffer.alloc(ct.length + shift);
          ct.copy(host, shift);
          const d = new CfbDecryptor(`${name}-ecb`, key, iv);
          const out: Buffer[] = [];
          for (let i = 0; i < ct.length; i += step) out.push(d.update(host.subarray(shift + i, shift + Math.min(ct.length, i + step))));
          out.push(d.final());
          expect(Buffer.concat(out).equals(plain)).toBe(true);
        }
      }
    }
  });
});
