// The record of a tree kept in volumes-sample/states.json, shared by the script that
// makes the sample and the test that checks it: path → "type mode mtime size sha256",
// "d mode mtime" or "l target", for every entry below `dir` (names sorted).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export function describeTree(dir, rel = '') {
  const out = {};
  for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
    const r = rel ? `${rel}/${name}` : name;
    const p = path.join(dir, r);
    const st = fs.lstatSync(p);
    if (st.isSymbolicLink()) out[r] = `l ${fs.readlinkSync(p)}`;
    else if (st.isDirectory()) {
      out[r] = `d ${(st.mode & 0o7777).toString(8)} ${Math.floor(st.mtimeMs / 1000)}`;
      Object.assign(out, describeTree(dir, r));
    } else {
      const sha = createHash('sha256').update(fs.readFileSync(p)).digest('hex');
      out[r] = `f ${(st.mode & 0o7777).toString(8)} ${Math.floor(st.mtimeMs / 1000)} ${st.size} ${sha}`;
    }
  }
  return out;
}
