#!/usr/bin/env node
// node scripts/thread-cpu.mjs OUT.json -- tapechain ARGS…
// Runs the CLI in this process and, at its end, writes the CPU seconds of the main
// thread and of the whole process (from /proc, Linux) to OUT.json: the bench's serial
// fraction (main-thread CPU / total CPU) of a parallel run.
import * as fs from 'node:fs';

const [out, sep, ...argv] = process.argv.slice(2);
if (!out || sep !== '--') throw new Error('usage: thread-cpu.mjs OUT.json -- ARGS…');
process.env.UV_THREADPOOL_SIZE ??= '8';
const ticks = 100; // USER_HZ on Linux
const cpuOf = (stat) => {
  const f = fs.readFileSync(stat, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / ticks; // utime + stime
};
const { main } = await import('../dist/cli/main.js');
process.exitCode = await main(argv);
const mainCpu = cpuOf(`/proc/self/task/${process.pid}/stat`);
const usage = process.cpuUsage();
fs.writeFileSync(out, JSON.stringify({ mainCpu, totalCpu: (usage.user + usage.system) / 1e6 }));
