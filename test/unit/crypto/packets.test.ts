import { describe, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { packetBody, packetHeader, readPacketHead, TAG } from '../../../src/crypto/packets.js';
import { ByteReader } from '../../../src/util/byte-reader.js';

/** A new-format packet whose body is written as partial bodies of 2^power bytes. */
function partialPacket(tag: number, body: Buffer, power: number): Buffer {
  const size = 1 << power;
  const parts: Buffer[] = [Buffer.from([0xc0 | tag])];
  let off = 0;
  for (; body.length - off > size; off += size) parts.push(Buffer.from([0xe0 | power]), body.subarray(off, off + size));
  parts.push(packetHeader(tag, body.length - off).subarray(1), body.subarray(off)); // the final, definite length
  return Buffer.concat(parts);
}

async function bodyPieces(packetBytes: Buffer, readSize: number): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  for (let o = 0; o < packetBytes.length; o += readSize) chunks.push(packetBytes.subarray(o, o + readSize));
  const r = new ByteReader(chunks);
  const head = (await readPacketHead(r))!;
  const out: Buffer[] = [];
  for await (const c of packetBody(r, head)) out.push(c);
  return out;
}

describe('packetBody', () => {
  test("small partial bodies (gpg writes 8 KiB ones; 512 B here) come out joined into pieces of 64 KiB or more", async () => {
    const body = Buffer.concat([randomBytes(300_000), Buffer.from('end')]);
    const pieces = await bodyPieces(partialPacket(TAG.LITERAL, body, 9), 128 * 1024);
    expect(Buffer.concat(pieces).equals(body)).toBe(true);
    for (const p of pieces.slice(0, -1)) expect(p.length).toBeGreaterThanOrEqual(64 * 1024);
    expect(pieces.length).toBeLessThanOrEqual(5);
  });

  test('1 MiB partial bodies pass through as the reads that carry them, uncopied', async () => {
    const body = Buffer.concat([randomBytes(2.5 * 1024 * 1024), Buffer.from('end')]);
    const bytes = partialPacket(TAG.SEIPD, body, 20);
    const pieces = await bodyPieces(bytes, 128 * 1024);
    expect(Buffer.concat(pieces).equals(body)).toBe(true);
    expect(pieces.every((p) => p.buffer === bytes.buffer)).toBe(true); // views of the input
  });
});
