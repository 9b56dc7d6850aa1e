/**
 * The layering of src/, as the README's ```layers block states it: every import edge
 * between folders is one the block allows, every folder is in it, and it has no cycle.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const SRC = 'src';

/** folder -> folders it may import, parsed from the README. */
function allowedEdges(): Map<string, Set<string>> {
  const readme = fs.readFileSync('README.md', 'utf8');
  const block = /```layers\n([\s\S]*?)```/.exec(readme);
  if (!block) throw new Error('README.md has no ```layers block');
  const map = new Map<string, Set<string>>();
  for (const line of block[1]!.split('\n').filter((l) => l.trim())) {
    const m = /^(\S+)\s*->(.*)$/.exec(line);
    if (!m) throw new Error(`layers block: cannot read "${line}"`);
    map.set(m[1]!, new Set(m[2]!.trim().split(/\s+/).filter(Boolean)));
  }
  return map;
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** The layer a file of src/ belongs to: its top folder; '' for src/index.ts and src/errors.ts. */
const layerOf = (file: string): string => path.relative(SRC, file).split(path.sep).slice(0, -1)[0] ?? '';

interface Edge {
  file: string;
  target: string;
  from: string;
  to: string;
}

function importEdges(): Edge[] {
  const edges: Edge[] = [];
  for (const file of sourceFiles(SRC)) {
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
      const target = path.normalize(path.join(path.dirname(file), m[1]!)).replace(/\.js$/, '.ts');
      edges.push({ file, target, from: layerOf(file), to: layerOf(target) });
    }
  }
  return edges;
}

/** The edges that break the layering in `allowed` (the test's subject; checked below on a made-up case too). */
function violations(edges: Edge[], allowed: Map<string, Set<string>>): string[] {
  const bad: string[] = [];
  for (const e of edges) {
    if (e.from === e.to || e.to === '' && path.basename(e.target) === 'errors.ts') continue;
    if (e.from === '' && path.basename(e.file) === 'index.ts' && e.to !== 'cli') continue;
    if (!allowed.get(e.from)?.has(e.to)) bad.push(`${e.file} imports ${e.target} (${e.from || 'src'} -> ${e.to || 'src'})`);
  }
  return bad;
}

/** A cycle in the allowed graph, as a path, or undefined. */
function cycle(allowed: Map<string, Set<string>>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const visit = (n: string, trail: string[]): string[] | undefined => {
    if (state.get(n) === 'done') return undefined;
    if (state.get(n) === 'open') return [...trail, n];
    state.set(n, 'open');
    for (const m of allowed.get(n) ?? []) {
      const c = visit(m, [...trail, n]);
      if (c) return c;
    }
    state.set(n, 'done');
    return undefined;
  };
  for (const n of allowed.keys()) {
    const c = visit(n, []);
    if (c) return c;
  }
  return undefined;
}

describe('layering of src/', () => {
  const allowed = allowedEdges();

  test('every import edge between folders is one the README allows', () => {
    expect(violations(importEdges(), allowed)).toEqual([]);
  });

  test('every folder of src/ is in the layers block, and every folder it names exists', () => {
    const folders = fs.readdirSync(SRC, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
    expect([...allowed.keys()].sort()).toEqual(folders);
    for (const targets of allowed.values()) for (const t of targets) expect(folders).toContain(t);
  });

  test('the allowed graph has no cycle', () => {
    expect(cycle(allowed)).toBeUndefined();
  });

  test('the check catches a command importing another command, and a cycle', () => {
    const edge = (from: string, to: string): Edge => ({ file: `src/${from}/x.ts`, target: `src/${to}/y.ts`, from, to });
    expect(violations([edge('backup', 'restore')], allowed)).toHaveLength(1);
    expect(violations([edge('backup', 'repo')], allowed)).toEqual([]);
    expect(cycle(new Map([['a', new Set(['b'])], ['b', new Set(['a'])]]))).toEqual(['a', 'b', 'a']);
  });
});
