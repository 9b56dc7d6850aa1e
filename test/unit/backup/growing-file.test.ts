import { describe, expect, test } from '@jest/globals';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { GrowingFiles } from '../../../src/backup/growing-file.js';
import { tempDirs } from '../../helpers/tmp.js';

const tmp = tempDirs();

describe('GrowingFiles', () => {
  test('a file written after it is followed is seen to grow before it is complete, then complete at its final size', async () => {
    const dir = tmp('grow');
    const files = new GrowingFiles(dir);
    try {
      const f = files.follow(join(dir, 'vol'));
      const out = fs.createWriteStream(join(dir, 'vol'));
      await new Promise((r) => out.write(Buffer.alloc(3 << 20), r));
      // resolved by the watch, not by `finish`: nothing has said the file is complete
      expect(await f.until(2 << 20)).toEqual({ bytes: 3 << 20, done: false });
      await new Promise<void>((r) => out.end(Buffer.alloc(1000), () => r()));
      f.finish((3 << 20) + 1000);
      expect(await f.until(10 << 20)).toEqual({ bytes: (3 << 20) + 1000, done: true });
    } finally {
      files.close();
    }
  });

  test('a cancelled file fails whoever waits for it, and is marked so', async () => {
    const dir = tmp('grow-cancel');
    const files = new GrowingFiles(dir);
    try {
      const f = files.follow(join(dir, 'never'));
      const waiting = f.until(1);
      f.cancel(new Error('the batch made no further volume'));
      await expect(waiting).rejects.toThrow(/no further volume/);
      expect(f.cancelled).toBe(true);
      await expect(f.until(1)).rejects.toThrow(/no further volume/);
    } finally {
      files.close();
    }
  });
});
