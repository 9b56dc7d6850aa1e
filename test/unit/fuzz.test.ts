/**
 * Mutation fuzzing of the parsers that read untrusted archive bytes: the manifest
 * parser, the tar reader, the OpenPGP reader and the delta applier. Each mutated input
 * must either parse or fail with an EngineError (a clear, classified error) — never a
 * TypeError/RangeError, a hang, or unbounded memory. Iterations are bounded (and the
 * seed fixed) so CI stays fast and failures reproduce.
 */
import { describe, expect, test } from '@jest/globals';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { formatManifest, parseManifest } from '../../src/chain/manifest.js';
import { decryptMessage } from '../../src/crypto/decrypt.js';
import { SymmetricEncryptor } from '../../src/crypto/encrypt.js';
import { DeltaBuilder } from '../../src/diff/delta.js';
import { applyDelta, bufferBasis } from '../../src/diff/patch.js';
import { SignatureIndex } from '../../src/diff/signature-index.js';
import { signatureOf } from '../../src/diff/signature.js';
import { EngineError } from '../../src/errors.js';
import { pathToIndex } from '../../src/volume/entry-name.js';
import { encodeHeader, padding } from '../../src/volume/tar-header.js';
import { TarReader } from '../../src/volume/tar-reader.js';

/** Small deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mutate(b: Buffer, r: () => number): Buffer {
  const out = Buffer.from(b);
  const kind = Math.floor(r() * 5);
  const at = Math.floor(r() * Math.max(1, out.length));
  if (kind === 0) {
    for (let i = 0; i < 1 + Math.floor(r() * 8); i++) out[Math.floor(r() * out.length)] = Math.floor(r() * 256);
    return out;
  }
  if (kind === 1) return out.subarray(0, at); // truncate
  if (kind === 2) return Buffer.concat([out.subarray(0, at), Buffer.from([Math.floor(r() * 256), 0xff, 0]), out.subarray(at)]); // insert
  if (kind === 3) return Buffer.concat([out.subarray(0, at), out.subarray(Math.min(out.length, at + 1 + Math.floor(r() * 600)))]); // delete a run
  out.fill(0xff, at, Math.min(out.length, at + 12)); // big numbers
  return out;
}

async function expectClassified(f: () => Promise<unknown>): Promise<'ok' | 'error'> {
  try {
    await f();
    return 'ok';
  } catch (e) {
    if (!(e instanceof EngineError)) throw new Error(`unclassified error: ${(e as Error)?.stack ?? e}`);
    return 'error';
  }
}

const ITER = 300;

describe('fuzz', () => {
  test('manifest parser', async () => {
    const valid = formatManifest({
      hostname: 'h',
      localdir: Buffer.from('/src dir'),
      volumes: [1, 2, 3].map((n) => ({ number: n, start: pathToIndex(Buffer.from(`a/${n}`)), startBlock: n, end: pathToIndex(Buffer.from(`b ${n}`)), hashType: 'SHA1' as const, hash: 'ab'.repeat(20) })),
      files: [{ action: 'new', path: Buffer.from('x y') }],
    });
    const r = rng(1);
    const seen = { ok: 0, error: 0 };
    for (let i = 0; i < ITER; i++) seen[await expectClassified(async () => parseManifest(mutate(valid, r)))]++;
    // every outcome is a parse or a FormatError (expectClassified fails otherwise); and
    // the mutations, most of which break the format, are mostly refused
    expect(await expectClassified(async () => parseManifest(valid))).toBe('ok');
    expect(seen.error).toBeGreaterThan(ITER / 3);
  });

  test('tar reader', async () => {
    const parts: Buffer[] = [];
    for (const [name, data] of [['snapshot/./', ''], ['snapshot/' + 'x'.repeat(150), 'long'], ['multivol_snapshot/f/1', 'y'.repeat(3000)], ['snapshot/é', 'z']] as const) {
      const d = Buffer.from(data);
      parts.push(encodeHeader({ name: Buffer.from(name), type: name.endsWith('/') ? 'directory' : 'file', mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', size: d.length, mtime: 1, linkname: Buffer.alloc(0), devmajor: 0, devminor: 0 }), d, Buffer.alloc(padding(d.length)));
    }
    const valid = Buffer.concat([...parts, Buffer.alloc(1024)]);
    const r = rng(2);
    for (let i = 0; i < ITER; i++) {
      const input = mutate(valid, r);
      await expectClassified(async () => {
        const t = new TarReader([input]);
        let n = 0;
        while ((await t.next()) && n++ < 100) await t.readAll();
        await t.drain();
      });
    }
  });

  test('OpenPGP reader', async () => {
    const enc = new SymmetricEncryptor(Buffer.from('pw'), { codedCount: 16 });
    const chunks: Buffer[] = [];
    await pipeline([Readable.from([Buffer.alloc(70000, 'a')]), ...(await enc.transforms({ compressLevel: 6 })), new Writable({ write(c, _e, cb) { chunks.push(c); cb(); } })]);
    const valid = Buffer.concat(chunks);
    const r = rng(3);
    let ok = 0;
    for (let i = 0; i < ITER; i++) {
      const input = mutate(valid, r);
      const res = await expectClassified(async () => {
        let n = 0;
        for await (const c of decryptMessage([input], { passphrase: Buffer.from('pw') })) n += c.length;
        return n;
      });
      if (res === 'ok') ok++;
    }
    // the MDC must catch essentially every change to the encrypted part
    expect(ok).toBeLessThan(ITER / 10);
  });

  test('delta applier', async () => {
    const basis = Buffer.alloc(50000);
    for (let i = 0; i < basis.length; i++) basis[i] = (i * 131) & 0xff;
    const next = Buffer.concat([basis.subarray(0, 20000), Buffer.from('inserted'), basis.subarray(25000)]);
    const parts: Buffer[] = [];
    const d = new DeltaBuilder(new SignatureIndex(signatureOf(basis, 512)), (b) => parts.push(b));
    d.update(next);
    d.finish();
    const valid = Buffer.concat(parts);
    const r = rng(4);
    for (let i = 0; i < ITER; i++) {
      const input = mutate(valid, r);
      await expectClassified(async () => {
        let n = 0;
        for await (const c of applyDelta([input], bufferBasis(basis))) {
          n += c.length;
          if (n > 10 << 20) throw new Error('delta output unbounded');
        }
      });
    }
  });
});
