/** Shell-style globs as regular expressions. */

/**
 * Glob text to regex source: `**` (when allowed) any run including `/`, `*` any run
 * but `/`, `?` one character but `/`, `[...]`/`[!...]` a class, the rest literal.
 */
export function globSource(g: string, doubleStar: boolean): string {
  let re = '';
  for (let i = 0; i < g.length; i++) {
    if (doubleStar && g.startsWith('**', i)) {
      re += '.*';
      i++;
    } else if (g[i] === '*') re += '[^/]*';
    else if (g[i] === '?') re += '[^/]';
    else if (g[i] === '[' && g.indexOf(']', i + 1) > 0) {
      const end = g.indexOf(']', i + 1);
      let cls = g.slice(i + 1, end).replace(/\\/g, '\\\\');
      if (cls.startsWith('!')) cls = '^' + cls.slice(1);
      re += `[${cls}]`;
      i = end;
    } else re += g[i]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return re;
}

/**
 * A matcher over relative paths ("etc/hosts") for patterns as restic find takes them:
 * a pattern with a `/` matches the whole path (a leading `/` is the backup's root),
 * one without matches the last component; any pattern matching is a match.
 */
export function pathMatcher(patterns: readonly string[], ignoreCase = false): (rel: string) => boolean {
  const flags = ignoreCase ? 'si' : 's';
  const compiled = patterns.map((p) => {
    const whole = p.includes('/');
    const re = new RegExp(`^${globSource(whole ? p.replace(/^\/+/, '').replace(/\/+$/, '') : p, true)}$`, flags);
    return { whole, re };
  });
  return (rel) => {
    const base = rel.slice(rel.lastIndexOf('/') + 1);
    return compiled.some((c) => c.re.test(c.whole ? rel : base));
  };
}
