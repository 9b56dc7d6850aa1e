/** What a local target holds, as the kill and signal tests watch it. */
import * as fs from 'node:fs';

const names = (target: string): string[] => (fs.existsSync(target) ? fs.readdirSync(target) : []);

/** Volumes stored under their final name (an upload in progress is a hidden temp file). */
export const storedVolumes = (target: string): number => names(target).filter((n) => /^duplicity-.*\.vol\d+\./.test(n)).length;

/** Lock objects on the target (repo/lock.ts), of this version or an older one. */
export const lockObjects = (target: string): string[] => names(target).filter((n) => n.startsWith('tapechain-lock'));
