// Jest global setup/teardown: a real S3 server (Ceph radosgw) on 127.0.0.1 for the
// backend contract and S3 tests, started by scripts/start-rgw.sh and stopped by PID
// with scripts/stop-rgw.sh. TAPECHAIN_S3_ENDPOINT set beforehand means "use that
// server". Outside CI, TAPECHAIN_SKIP_S3=1 skips the S3 tests (visibly); in CI they
// always run.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function setup() {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true'; // the pinned SDK's Node 22 notice
  if (process.env.TAPECHAIN_S3_ENDPOINT) return;
  if (process.env.TAPECHAIN_SKIP_S3 === '1' && !process.env.CI) return;
  const dir = mkdtempSync(join(tmpdir(), 'tapechain-rgw-'));
  const r = spawnSync('bash', ['scripts/start-rgw.sh', dir], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: 180_000 });
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(
      `could not start the test S3 server (radosgw): ${r.stderr || r.error?.message}\n` +
        'install it with: apt-get install -y --no-install-recommends ceph-mon ceph-osd radosgw (bash .ci/run does), ' +
        'or set TAPECHAIN_SKIP_S3=1 to skip the S3 tests locally',
    );
  }
  process.env.TAPECHAIN_S3_ENDPOINT = `http://127.0.0.1:${readFileSync(join(dir, 'port'), 'utf8').trim()}`;
  process.env.TAPECHAIN_RGW_DIR = dir;
}

export async function teardown() {
  const dir = process.env.TAPECHAIN_RGW_DIR;
  if (!dir) return;
  spawnSync('bash', ['scripts/stop-rgw.sh', dir], { stdio: 'inherit', timeout: 60_000 });
  rmSync(dir, { recursive: true, force: true });
}

export default setup;
