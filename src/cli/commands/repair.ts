import type { Command } from 'commander';
import { IntegrityError } from '../../errors.js';
import { planRepair, runRepair } from '../../inspect/repair.js';
import { addCacheOption, addLockOption, addTargetOptions, backendFor, cacheFor, collect, withLock, type CommonFlags, TARGET_HELP } from '../common.js';
import type { CliIo } from '../io.js';
import { readingKeys, writingKeys } from '../keys.js';

interface RepairFlags extends CommonFlags {
  force?: boolean;
  encryption: boolean;
}

export function registerRepair(program: Command, io: CliIo): void {
  const cmd = program
    .command('repair')
    .description('put back manifests and signature files the target lost, from the local cache (lists them unless --force)')
    .argument('<target>', TARGET_HELP)
    .option('--force', 'really upload (without it, only list what would be put back)')
    .option('--no-encryption', 'the chain is not encrypted (made with --no-encryption)')
    .option('--passphrase-file <file>', "the chain's passphrase from FILE (else env PASSPHRASE or TAPECHAIN_PASSPHRASE)")
    .option('--encrypt-key <file>', "the chain's armored public key(s) (repeatable)", collect)
    .option('--sign-key <file>', 'sign the files put back with this armored secret key');
  addTargetOptions(cmd);
  addCacheOption(cmd);
  addLockOption(cmd);
  cmd.addHelpText(
    'after',
    `
A copy is put back only when it belongs to the stored set: a manifest must list every
volume at the target with the hash it records, and the key given must be the chain's.

Examples:
  tapechain status /mnt/backup/home                           # names what the cache can put back
  PASSPHRASE=secret tapechain repair --force /mnt/backup/home`,
  );
  cmd.action(async (target: string, flags: RepairFlags) => {
    const backend = await backendFor(target, flags, io);
    const cache = cacheFor(target, flags, io);
    const items = await planRepair(backend, cache);
    if (items.length === 0) {
      io.stdout('Nothing to repair: the target has every manifest and signature file the cache knows of.\n');
      return;
    }
    const bad = items.filter((i) => i.problem);
    for (const i of bad) io.stderr(`tapechain: ${i.name}: cannot be put back: ${i.problem}\n`);
    const good = items.filter((i) => !i.problem);
    if (!flags.force) {
      for (const i of good) io.stdout(`would put back ${i.name} from the local cache\n`);
      if (good.length) io.stdout(`${good.length} file(s) would be put back; run again with --force to upload them.\n`);
    } else {
      const { encryptor } = await writingKeys(flags, io);
      const keys = await readingKeys({ ...flags, signKey: undefined }, io);
      await withLock(backend, cache, 'repair', flags, io, () => runRepair(backend, good, encryptor, keys, (name) => io.stdout(`put back ${name}\n`)));
    }
    if (bad.length) throw new IntegrityError(`${bad.length} file(s) could not be put back`, { code: 'REPAIR_REFUSED' });
  });
}
