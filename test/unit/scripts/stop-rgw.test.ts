import { describe, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDirs } from '../../helpers/tmp.js';

const tmp = tempDirs();

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('scripts/stop-rgw.sh', () => {
  test('stops a start that failed part way (no pids list yet) by the daemons\' pid files', () => {
    const dir = tmp('rgw-stop');
    mkdirSync(join(dir, 'run'));
    // a stand-in for the monitor that came up before the OSD failed: forked into the
    // background as ceph-mon does, so not a child of this process
    const pid = Number(spawnSync('sh', ['-c', 'sleep 300 >/dev/null 2>&1 & echo $!']).stdout.toString());
    try {
      writeFileSync(join(dir, 'run', 'mon.a.pid'), `${pid}\n`);
      expect(alive(pid)).toBe(true);
      expect(spawnSync('bash', ['scripts/stop-rgw.sh', dir]).status).toBe(0);
      expect(alive(pid)).toBe(false); // the script returns once the pid is gone
    } finally {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
  });

  test('a directory with nothing started is left alone', () => {
    expect(spawnSync('bash', ['scripts/stop-rgw.sh', tmp('rgw-none')]).status).toBe(0);
  });
});
