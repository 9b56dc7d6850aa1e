#!/usr/bin/env node
// Generates src/diff/md4x4-wasm.ts: a WebAssembly SIMD function that computes the MD4
// of four equal-length blocks at once, one block per 32-bit lane (MD4 has no
// parallelism inside a block, but signature blocks are independent).
//
//   node scripts/gen-md4x4.mjs [--check]   (needs wat2wasm from wabt: apt-get install wabt)
//
// --check writes nothing and fails when the committed file differs from the output.
//
// The module's memory holds the four blocks back to back from offset 0 (each `len`
// bytes, a multiple of 64, at most MAX_BLOCK); md4x4(len) leaves the digests at OUT as
// four vectors a, b, c, d (lane L of each is block L's word); rollsum4(len) leaves
// their four rollsums (librsync's weak sum) after them.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MAX_BLOCK = 16384;
const OUT = 4 * MAX_BLOCK;

const L = [];
const emit = (s) => L.push(s);

// rotl(v, s) of the vector on the stack top, into local $t
const rotl = (s) => {
  emit(`local.tee $t`);
  emit(`i32.const ${s}`);
  emit(`i32x4.shl`);
  emit(`local.get $t`);
  emit(`i32.const ${32 - s}`);
  emit(`i32x4.shr_u`);
  emit(`v128.or`);
};
const F = (x, y, z) => [`local.get $${y}`, `local.get $${z}`, `local.get $${x}`, `v128.bitselect`]; // (x&y)|(~x&z)
const G = (x, y, z) => [`local.get $${z}`, `local.get $${x}`, `local.get $${x}`, `local.get $${y}`, `v128.xor`, `v128.bitselect`]; // majority
const H = (x, y, z) => [`local.get $${x}`, `local.get $${y}`, `v128.xor`, `local.get $${z}`, `v128.xor`];

const ROUNDS = [
  { f: F, k: null, words: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15], shifts: [3, 7, 11, 19] },
  { f: G, k: '0x5a827999', words: [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15], shifts: [3, 5, 9, 13] },
  { f: H, k: '0x6ed9eba1', words: [0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15], shifts: [3, 9, 11, 15] },
];
// Step i updates ORDER[i % 4] from the next three, as in RFC 1320.
const ORDER = [
  ['a', 'b', 'c', 'd'],
  ['d', 'a', 'b', 'c'],
  ['c', 'd', 'a', 'b'],
  ['b', 'c', 'd', 'a'],
];

function compress(word) {
  for (const r of ['a', 'b', 'c', 'd']) {
    emit(`local.get $${r}`);
    emit(`local.set $${r}${r}`);
  }
  for (const round of ROUNDS) {
    round.words.forEach((w, i) => {
      const [t, x, y, z] = ORDER[i % 4];
      emit(`local.get $${t}`);
      for (const s of round.f(x, y, z)) emit(s);
      emit(`i32x4.add`);
      emit(word(w));
      emit(`i32x4.add`);
      if (round.k) {
        emit(`v128.const i32x4 ${round.k} ${round.k} ${round.k} ${round.k}`);
        emit(`i32x4.add`);
      }
      rotl(round.shifts[i % 4]);
      emit(`local.set $${t}`);
    });
  }
  for (const r of ['a', 'b', 'c', 'd']) {
    emit(`local.get $${r}`);
    emit(`local.get $${r}${r}`);
    emit(`i32x4.add`);
    emit(`local.set $${r}`);
  }
}

const xs = Array.from({ length: 16 }, (_, j) => `(local $x${j} v128)`).join(' ');
emit(`(module`);
emit(`(memory (export "memory") ${(OUT + 64 + 65535) >> 16})`);
emit(`(func (export "md4x4") (param $len i32)`);
emit(`(local $p0 i32) (local $p1 i32) (local $p2 i32) (local $p3 i32) (local $end i32)`);
emit(`(local $a v128) (local $b v128) (local $c v128) (local $d v128) (local $aa v128) (local $bb v128) (local $cc v128) (local $dd v128) (local $t v128) ${xs}`);
emit(`v128.const i32x4 0x67452301 0x67452301 0x67452301 0x67452301`);
emit(`local.set $a`);
emit(`v128.const i32x4 0xefcdab89 0xefcdab89 0xefcdab89 0xefcdab89`);
emit(`local.set $b`);
emit(`v128.const i32x4 0x98badcfe 0x98badcfe 0x98badcfe 0x98badcfe`);
emit(`local.set $c`);
emit(`v128.const i32x4 0x10325476 0x10325476 0x10325476 0x10325476`);
emit(`local.set $d`);
// lane pointers: block L starts at L * len
emit(`(local.set $p0 (i32.const 0))`);
emit(`(local.set $p1 (local.get $len))`);
emit(`(local.set $p2 (i32.mul (local.get $len) (i32.const 2)))`);
emit(`(local.set $p3 (i32.mul (local.get $len) (i32.const 3)))`);
emit(`(local.set $end (local.get $len))`);
emit(`(block $done (loop $chunk`);
emit(`(br_if $done (i32.ge_u (local.get $p0) (local.get $end)))`);
// gather word j of the four lanes
for (let j = 0; j < 16; j++) {
  emit(`local.get $p0`);
  emit(`v128.load32_zero offset=${4 * j}`);
  for (let lane = 1; lane < 4; lane++) {
    emit(`local.set $x${j}`);
    emit(`local.get $p${lane}`);
    emit(`local.get $x${j}`);
    emit(`v128.load32_lane offset=${4 * j} ${lane}`);
  }
  emit(`local.set $x${j}`);
}
compress((w) => `local.get $x${w}`);
for (let lane = 0; lane < 4; lane++) emit(`(local.set $p${lane} (i32.add (local.get $p${lane}) (i32.const 64)))`);
emit(`br $chunk`);
emit(`))`);
// The padding chunk is the same for every lane (equal lengths, a multiple of 64):
// 0x80, zeros, the length in bits (little-endian 64-bit; blocks are far below 2^29).
const pad = (w) => {
  if (w === 0) return `v128.const i32x4 0x80 0x80 0x80 0x80`;
  if (w === 14) return `(i32x4.splat (i32.shl (local.get $len) (i32.const 3)))`;
  return `v128.const i32x4 0 0 0 0`;
};
compress(pad);
['a', 'b', 'c', 'd'].forEach((r, i) => {
  emit(`i32.const ${OUT + 16 * i}`);
  emit(`local.get $${r}`);
  emit(`v128.store`);
});
emit(`)`);

// rollsum4(len): librsync's rollsum of each of the four blocks, as u32 at WEAK + 4·i.
// Per 16-byte chunk c of a block: x = Σ b, j = Σ k·b_k (k = 0…15), via i16 dot products;
// then Σ i·b_i = 16·Σ c·x_c + Σ j_c, s1 = Σ b + 31n, s2 = n·Σ b − Σ i·b_i + 31·n(n+1)/2.
// Only the low 16 bits of s1 and s2 are kept, so i32 wrap-around does no harm.
emit(`(func (export "rollsum4") (param $len i32)`);
emit(`(local $l i32) (local $p i32) (local $end i32) (local $c i32) (local $sb i32) (local $si i32) (local $s1 i32) (local $s2 i32)`);
emit(`(local $v v128) (local $lo v128) (local $hi v128) (local $x v128) (local $S v128) (local $J v128) (local $C v128)`);
emit(`(block $lanes_done (loop $lane`);
emit(`(br_if $lanes_done (i32.ge_u (local.get $l) (i32.const 4)))`);
emit(`(local.set $end (i32.add (local.tee $p (i32.mul (local.get $l) (local.get $len))) (local.get $len)))`);
emit(`(local.set $c (i32.const 0))`);
for (const r of ['S', 'J', 'C']) {
  emit(`v128.const i32x4 0 0 0 0`);
  emit(`local.set $${r}`);
}
emit(`(block $chunks_done (loop $chunk16`);
emit(`(br_if $chunks_done (i32.ge_u (local.get $p) (local.get $end)))`);
emit(`(local.set $lo (i16x8.extend_low_i8x16_u (local.tee $v (v128.load (local.get $p)))))`);
emit(`(local.set $hi (i16x8.extend_high_i8x16_u (local.get $v)))`);
// x: the chunk's byte sum (lo + hi is at most 2·255 per lane: no overflow)
emit(`(local.tee $x (i32x4.dot_i16x8_s (i16x8.add (local.get $lo) (local.get $hi)) (v128.const i16x8 1 1 1 1 1 1 1 1)))`);
emit(`(local.set $S (i32x4.add (local.get $S)))`);
emit(`(i32x4.dot_i16x8_s (local.get $lo) (v128.const i16x8 0 1 2 3 4 5 6 7))`);
emit(`(i32x4.dot_i16x8_s (local.get $hi) (v128.const i16x8 8 9 10 11 12 13 14 15))`);
emit(`(local.set $J (i32x4.add (i32x4.add) (local.get $J)))`);
emit(`(local.set $C (i32x4.add (i32x4.mul (local.get $x) (i32x4.splat (local.get $c))) (local.get $C)))`);
emit(`(local.set $p (i32.add (local.get $p) (i32.const 16)))`);
emit(`(local.set $c (i32.add (local.get $c) (i32.const 1)))`);
emit(`br $chunk16`);
emit(`))`);
const hsum = (v) => {
  emit(`local.get $${v}`);
  emit(`i32x4.extract_lane 0`);
  for (let k = 1; k < 4; k++) {
    emit(`local.get $${v}`);
    emit(`i32x4.extract_lane ${k}`);
    emit(`i32.add`);
  }
};
hsum('S');
emit(`local.set $sb`);
// Σ i·b_i = 16·ΣC + ΣJ
hsum('C');
emit(`i32.const 4`);
emit(`i32.shl`);
hsum('J');
emit(`i32.add`);
emit(`local.set $si`);
// s1 = Σb + 31·len
emit(`(local.set $s1 (i32.add (local.get $sb) (i32.mul (local.get $len) (i32.const 31))))`);
// s2 = len·Σb − Σ i·b_i + 31·len·(len+1)/2
emit(`(i32.sub (i32.mul (local.get $len) (local.get $sb)) (local.get $si))`);
emit(`(i32.mul (i32.shr_u (i32.mul (local.get $len) (i32.add (local.get $len) (i32.const 1))) (i32.const 1)) (i32.const 31))`);
emit(`(local.set $s2 (i32.add))`);
emit(`local.get $l`);
emit(`i32.const 2`);
emit(`i32.shl`);
emit(`local.get $s2`);
emit(`i32.const 16`);
emit(`i32.shl`);
emit(`local.get $s1`);
emit(`i32.const 0xffff`);
emit(`i32.and`);
emit(`i32.or`);
emit(`i32.store offset=${OUT + 64}`);
emit(`(local.set $l (i32.add (local.get $l) (i32.const 1)))`);
emit(`br $lane`);
emit(`))`);
emit(`)`);
emit(`)`);

const dir = mkdtempSync(join(tmpdir(), 'md4x4-'));
try {
  writeFileSync(join(dir, 'md4x4.wat'), L.join('\n') + '\n');
  execFileSync('wat2wasm', [join(dir, 'md4x4.wat'), '-o', join(dir, 'md4x4.wasm')], { stdio: 'inherit' });
  const wasm = readFileSync(join(dir, 'md4x4.wasm'));
  const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'diff', 'md4x4-wasm.ts');
  const b64 = wasm.toString('base64').replace(/.{1,100}/g, (s) => `  '${s}' +\n`);
  const text =
    `// Generated by scripts/gen-md4x4.mjs (WebAssembly SIMD: MD4 of four blocks at once). Do not edit.\n` +
    `export const MD4X4_WASM =\n${b64.replace(/ \+\n$/, ';\n')}` +
    `/** Largest block length md4x4 takes (a multiple of 64). */\nexport const MD4X4_MAX_BLOCK = ${MAX_BLOCK};\n` +
    `/** Where md4x4 leaves the digests: vectors a, b, c, d. */\nexport const MD4X4_OUT = ${OUT};\n` +
    `/** Where rollsum4 leaves the four weak sums (u32, little-endian). */\nexport const ROLLSUM4_OUT = ${OUT + 64};\n`;
  if (process.argv.includes('--check')) {
    if (readFileSync(out, 'utf8') !== text) {
      console.error(`${out} differs from what this script generates: run it again`);
      process.exitCode = 1;
    }
  } else {
    writeFileSync(out, text);
    console.log(`wrote ${out} (${wasm.length} bytes of wasm)`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
