// Jest global setup/teardown.
//
// 1. A temp directory of the suite's own (TMPDIR for every worker and every process the
//    tests start): at the end it must be empty — a test that leaves files behind, or a
//    tapechain run that does, fails the run, naming what was left.
// 2. A real S3 server (Ceph radosgw) on 127.0.0.1 for the backend contract and S3 tests,
//    started by scripts/start-rgw.sh and stopped by PID with scripts/stop-rgw.sh; a start
//    that fails is tried once more (a monitor can fail transiently on a fresh machine),
//    and a second failure keeps the logs and prints their tail. TAPECHAIN_S3_ENDPOINT set
//    beforehand means "use that server". Outside CI, TAPECHAIN_SKIP_S3=1 skips the S3
//    tests (visibly); in CI they always run.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function setup() {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true'; // the pinned SDK's Node 22 notice
  const outer = tmpdir();
  process.env.TAPECHAIN_SUITE_TMP = mkdtempSync(join(outer, 'tapechain-suite-'));
  chmodSync(process.env.TAPECHAIN_SUITE_TMP, 0o711); // tests that run the CLI as nobody reach their own dirs
  process.env.TMPDIR = process.env.TAPECHAIN_SUITE_TMP;
  if (process.env.TAPECHAIN_S3_ENDPOINT) return;
  if (process.env.TAPECHAIN_SKIP_S3 === '1' && !process.env.CI) return;
  let failure = '';
  const failed = [];
  for (let attempt = 1; attempt <= 2; attempt++) {
    const dir = mkdtempSync(join(outer, 'tapechain-rgw-'));
    const r = spawnSync('bash', ['scripts/start-rgw.sh', dir], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: 180_000 });
    if (r.status === 0) {
      process.env.TAPECHAIN_S3_ENDPOINT = `http://127.0.0.1:${readFileSync(join(dir, 'port'), 'utf8').trim()}`;
      process.env.TAPECHAIN_RGW_DIR = dir;
      // the failed attempt's logs were printed; the retry worked, so they go
      for (const d of failed) rmSync(d, { recursive: true, force: true });
      return;
    }
    failed.push(dir);
    // stop whatever of this attempt did start (by its daemons' pid files), keep its logs
    spawnSync('bash', ['scripts/stop-rgw.sh', dir], { stdio: 'ignore', timeout: 60_000 });
    failure = `attempt ${attempt}: ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-12).join('\n')}\n(logs kept in ${join(dir, 'log')})`;
    process.stderr.write(`test S3 server (radosgw) did not start, ${failure}\n`);
  }
  const installed = spawnSync('sh', ['-c', 'command -v radosgw && command -v ceph-mon && command -v ceph-osd'], { stdio: 'ignore' }).status === 0;
  throw new Error(
    `could not start the test S3 server (radosgw) twice; last ${failure}\n` +
      (installed
        ? 'radosgw is installed: the logs above say why it did not start'
        : 'install it with: apt-get install -y --no-install-recommends ceph-mon ceph-osd radosgw (bash .ci/run does)') +
      '; or set TAPECHAIN_SKIP_S3=1 to skip the S3 tests locally',
  );
}

export async function teardown() {
  const dir = process.env.TAPECHAIN_RGW_DIR;
  if (dir) {
    spawnSync('bash', ['scripts/stop-rgw.sh', dir], { stdio: 'inherit', timeout: 60_000 });
    rmSync(dir, { recursive: true, force: true });
  }
  const suiteTmp = process.env.TAPECHAIN_SUITE_TMP;
  if (!suiteTmp || !existsSync(suiteTmp)) return;
  const left = readdirSync(suiteTmp);
  rmSync(suiteTmp, { recursive: true, force: true });
  if (left.length > 0) throw new Error(`the test run left ${left.length} temp entr${left.length === 1 ? 'y' : 'ies'} behind: ${left.slice(0, 20).join(', ')}`);
}

export default setup;
