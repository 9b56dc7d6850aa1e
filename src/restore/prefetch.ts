/**
 * Downloads volumes ahead of the reader for remote targets: while volume N is being
 * decrypted and applied, volume N+1 is copied to a temp file (at most `ahead` files on
 * disk), so network and CPU overlap. Each temp file is removed once it has been read.
 */
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { downloadVolume } from '../repo/download.js';
import type { VolumeRef } from '../volume/set-reader.js';

export function prefetchVolumes(refs: VolumeRef[], dir: string, ahead = 1): VolumeRef[] {
  const downloads = new Map<number, Promise<string>>();
  const start = (i: number) => {
    if (i >= refs.length || downloads.has(i)) return;
    const file = join(dir, `prefetch-${i}`);
    const p = downloadVolume(refs[i]!, file).then(() => file);
    p.catch(() => undefined); // observed when the reader gets to it
    downloads.set(i, p);
  };
  return refs.map((r, i) => ({
    ...r,
    open: async () => {
      start(i);
      for (let k = 1; k <= ahead; k++) start(i + k);
      const file = await downloads.get(i)!;
      const s = createReadStream(file, { highWaterMark: 1 << 20 });
      s.on('close', () => void rm(file, { force: true }));
      return s;
    },
  }));
}
