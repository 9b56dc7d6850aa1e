/** path → "f mode mtime size sha256" | "d mode mtime" | "l target" for every entry below `dir`. */
export function describeTree(dir: string, rel?: string): Record<string, string>;
