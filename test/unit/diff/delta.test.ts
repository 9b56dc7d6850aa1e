import { describe, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeltaBuilder } from '../../../src/diff/delta.js';
import { applyDelta, bufferBasis } from '../../../src/diff/patch.js';
import { SignatureIndex } from '../../../src/diff/signature-index.js';
import { BlockSumCache } from '../../../src/diff/block-sum-cache.js';
import { SignatureBuilder, signatureOf } from '../../../src/diff/signature.js';
import { FormatError } from '../../../src/errors.js';
import { tempDirs } from '../../helpers/tmp.js';
import { requireTool, runOk } from '../../helpers/tools.js';

const tmp = tempDirs();
requireTool('rdiff');

function makeDelta(sig: Buffer, data: Buffer, step = 65536): Buffer {
  const parts: Buffer[] = [];
  const d = new DeltaBuilder(new SignatureIndex(sig), (b) => parts.push(b));
  for (let i = 0; i < data.length; i += step) d.update(data.subarray(i, i + step));
  d.finish();
  return Buffer.concat(parts);
}

async function patch(basis: Buffer, delta: Buffer, step = 4096): Promise<Buffer> {
  function* src() {
    for (let i = 0; i < delta.length; i += step) yield delta.subarray(i, i + step);
  }
  const out: Buffer[] = [];
  for await (const c of applyDelta(src(), bufferBasis(basis))) out.push(c);
  return Buffer.concat(out);
}

const R = (n: number) => randomBytes(n);
const cases: [string, Buffer, (b: Buffer) => Buffer, number][] = [
  ['identical', R(100000), (b) => b, 512],
  ['identical, size a multiple of the block', R(512 * 40), (b) => b, 512],
  ['empty basis', Buffer.alloc(0), () => R(5000), 512],
  ['empty new file', R(5000), () => Buffer.alloc(0), 512],
  ['both empty', Buffer.alloc(0), () => Buffer.alloc(0), 512],
  ['insert in the middle', R(300000), (b) => Buffer.concat([b.subarray(0, 150001), R(777), b.subarray(150001)]), 512],
  ['delete in the middle', R(300000), (b) => Buffer.concat([b.subarray(0, 100000), b.subarray(103333)]), 1024],
  ['shift by one byte', R(200000), (b) => Buffer.concat([Buffer.from([7]), b]), 512],
  ['append', R(200000), (b) => Buffer.concat([b, R(12345)]), 512],
  ['truncate', R(200000), (b) => b.subarray(0, 123457), 512],
  ['overwrite in place', R(4_500_000), (b) => { const c = Buffer.from(b); R(200000).copy(c, 2_000_000); return c; }, 2048],
  ['all zeros', Buffer.alloc(100000), (b) => Buffer.concat([b, Buffer.alloc(10, 1)]), 512],
  ['tiny files', Buffer.from('hello world\n'), () => Buffer.from('hello world, changed\n'), 512],
  ['short file unchanged', Buffer.from('abc'), (b) => b, 512],
  ['unrelated data', R(50000), () => R(60000), 512],
  ['blocks reordered', R(512 * 20), (b) => Buffer.concat([b.subarray(512 * 10), b.subarray(0, 512 * 10)]), 512],
];

describe('delta against librsync (rdiff)', () => {
  test.each(cases)('%s', async (_name, basis, change, bl) => {
    const dir = tmp('delta');
    const next = change(basis);
    const f = (n: string) => join(dir, n);
    writeFileSync(f('old'), basis);
    writeFileSync(f('new'), next);
    const sig = signatureOf(basis, bl);
    // rdiff patch accepts our delta
    const ours = makeDelta(sig, next, 1000);
    writeFileSync(f('ours.delta'), ours);
    runOk('rdiff', ['patch', f('old'), f('ours.delta'), f('out-rdiff')]);
    expect(readFileSync(f('out-rdiff')).equals(next)).toBe(true);
    // we apply our delta and rdiff's delta
    expect((await patch(basis, ours, 999)).equals(next)).toBe(true);
    writeFileSync(f('sig'), sig);
    runOk('rdiff', ['delta', f('sig'), f('new'), f('rdiff.delta')]);
    const theirs = readFileSync(f('rdiff.delta'));
    expect((await patch(basis, theirs, 513)).equals(next)).toBe(true);
    // our delta is not bigger than rdiff's by more than a few command bytes
    expect(ours.length).toBeLessThanOrEqual(theirs.length + 64);
  });

  test('chunking of the input does not change the result', () => {
    const basis = R(200000);
    const next = Buffer.concat([basis.subarray(0, 70000), R(100), basis.subarray(70000)]);
    const sig = signatureOf(basis, 512);
    const a = makeDelta(sig, next, 65536);
    for (const step of [1, 511, 513, 100000]) expect(makeDelta(sig, next, step).equals(a)).toBe(true);
  });

  test.each(cases)('sharing block sums with the new signature (%s): the same delta and signature, unchanged blocks summed once', (name, basis, change, bl) => {
    const next = change(basis);
    const sig = signatureOf(basis, bl);
    let proven = 0;
    class Counting extends BlockSumCache {
      override setWeak(offset: number, len: number, weak: number): void {
        proven++;
        super.setWeak(offset, len, weak);
      }
    }
    const sums = new Counting(bl, 8);
    const deltaParts: Buffer[] = [];
    const sigParts: Buffer[] = [];
    const d = new DeltaBuilder(new SignatureIndex(sig), (b) => deltaParts.push(b), sums);
    const newSig = new SignatureBuilder(bl, (b) => sigParts.push(b), 8, { cache: sums });
    for (let i = 0; i < next.length; i += 1000) {
      d.update(next.subarray(i, i + 1000));
      newSig.update(next.subarray(i, i + 1000));
    }
    d.finish();
    newSig.finish();
    expect(Buffer.concat(deltaParts).equals(makeDelta(sig, next, 1000))).toBe(true);
    expect(Buffer.concat(sigParts).equals(signatureOf(next, bl))).toBe(true);
    // where the file is unchanged, blocks are proven equal to the old ones (weak sum not computed)
    if (name === 'identical' || name === 'overwrite in place' || name === 'append') expect(proven).toBeGreaterThan(next.length / bl / 2);
  });

  test('an unchanged file is one COPY', () => {
    const basis = R(1_000_000);
    const d = makeDelta(signatureOf(basis, 512), basis);
    expect(d.length).toBeLessThan(16);
  });

  test.each([
    ['BLAKE2 + rollsum', ['-H', 'blake2', '-R', 'rollsum']],
    ['RabinKarp + BLAKE2 (rdiff default)', []],
    ['RabinKarp + MD4', ['-H', 'md4', '-R', 'rabinkarp']],
  ])('delta against a %s signature', async (_n, flags) => {
    const dir = tmp('magic');
    const basis = R(100000);
    const next = Buffer.concat([basis.subarray(0, 50000), R(333), basis.subarray(50000)]);
    writeFileSync(join(dir, 'old'), basis);
    runOk('rdiff', [...flags, '-b', '512', 'signature', join(dir, 'old'), join(dir, 'sig')]);
    const d = makeDelta(readFileSync(join(dir, 'sig')), next);
    expect(d.length).toBeLessThan(2000); // most of it matched
    writeFileSync(join(dir, 'd'), d);
    runOk('rdiff', ['patch', join(dir, 'old'), join(dir, 'd'), join(dir, 'out')]);
    expect(readFileSync(join(dir, 'out')).equals(next)).toBe(true);
  });
});

describe('hostile deltas', () => {
  const magic = Buffer.from([0x72, 0x73, 0x02, 0x36]);
  test.each([
    ['COPY beyond the basis', Buffer.concat([magic, Buffer.from([0x49, 0x00, 0x10, 0xff]), Buffer.from([0])]), /out of range/],
    ['reserved opcode', Buffer.concat([magic, Buffer.from([0x60, 0])]), /reserved/],
    ['no END', Buffer.concat([magic, Buffer.from([0x03, 1, 2, 3])]), /without END/],
    ['literal cut short', Buffer.concat([magic, Buffer.from([0x42, 0xff, 0xff, 1, 2])]), /truncated/],
    ['wrong magic', Buffer.from([1, 2, 3, 4, 0]), /not a librsync delta/],
  ])('%s', async (_n, delta, msg) => {
    await expect(patch(Buffer.alloc(100), delta)).rejects.toThrow(FormatError);
    await expect(patch(Buffer.alloc(100), delta)).rejects.toThrow(msg);
  });
});
