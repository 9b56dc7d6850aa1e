/**
 * No function of the engine (src/ but cli/) is longer than about 60 lines unless the
 * comment above it says why it is kept as one function ("Kept as one function: ...").
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';

const LIMIT = 60;
const MARKER = /Kept as one function:/;

function engineFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return p === path.join('src', 'cli') ? [] : engineFiles(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

/** Functions over LIMIT lines without the marker in the comments just above them, as "file:line name (n lines)". */
function longUnexplained(file: string, text: string): string[] {
  const src = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const out: string[] = [];
  const visit = (n: ts.Node): void => {
    if (ts.isFunctionLike(n) && 'body' in n && n.body) {
      const body = n.body as ts.Node;
      const lines = src.getLineAndCharacterOfPosition(body.end).line - src.getLineAndCharacterOfPosition(body.getStart()).line + 1;
      // the comments before the declaration (for a method or a const arrow, its statement)
      const holder = ts.isArrowFunction(n) || ts.isFunctionExpression(n) ? (n.parent?.parent?.parent ?? n) : n;
      const comments = (ts.getLeadingCommentRanges(text, holder.getFullStart()) ?? []).map((r) => text.slice(r.pos, r.end)).join('\n');
      if (lines > LIMIT && !MARKER.test(comments)) {
        const name = (n as ts.FunctionLikeDeclaration).name?.getText(src) ?? '(anonymous)';
        out.push(`${file}:${src.getLineAndCharacterOfPosition(n.getStart()).line + 1} ${name} (${lines} lines)`);
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(src);
  return out;
}

describe('function length in the engine', () => {
  test(`no function over ${LIMIT} lines without a comment saying why it is one`, () => {
    expect(engineFiles('src').flatMap((f) => longUnexplained(f, fs.readFileSync(f, 'utf8')))).toEqual([]);
  });

  test('the check sees a long function, and accepts it once explained', () => {
    const long = `function f() {\n${'  x++;\n'.repeat(LIMIT + 1)}}\n`;
    expect(longUnexplained('x.ts', long)).toEqual([`x.ts:1 f (${LIMIT + 3} lines)`]);
    expect(longUnexplained('x.ts', `/** Kept as one function: a hot loop. */\n${long}`)).toEqual([]);
    expect(longUnexplained('x.ts', `class C {\n  // Kept as one function: a state machine.\n  m() {\n${'  x++;\n'.repeat(LIMIT + 1)}  }\n}\n`)).toEqual([]);
  });
});
