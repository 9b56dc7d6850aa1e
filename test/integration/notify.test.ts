/** --notify-url against a local HTTP server: the pings a monitoring service receives. */
import * as fs from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { ExitCode } from '../../src/errors.js';
import { runCli } from '../helpers/cli.js';
import { tempDirs } from '../helpers/tmp.js';

const tmp = tempDirs();
interface Ping {
  path: string;
  body: string;
}
const pings: Ping[] = [];
/** Paths under /down answer 500. */
let server: Server;
let base = '';

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      pings.push({ path: req.url ?? '', body });
      res.statusCode = req.url?.startsWith('/down') ? 500 : 200;
      res.end('OK');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

function source(dir: string): string {
  const src = join(dir, 'src');
  fs.mkdirSync(src);
  fs.writeFileSync(join(src, 'a'), 'a');
  return src;
}

describe('--notify-url', () => {
  test('a backup pings /start, then the URL on success; a failing one /fail with its error line', async () => {
    const dir = tmp('notify');
    const src = source(dir);
    const env = { PASSPHRASE: 'pw', XDG_CACHE_HOME: join(dir, 'cache') };
    pings.length = 0;
    const ok = await runCli(['backup', '--quiet', '--notify-url', `${base}/ok-1`, src, join(dir, 't')], env);
    expect(ok.code).toBe(0);
    expect(pings).toEqual([
      { path: '/ok-1/start', body: '' },
      { path: '/ok-1', body: '' },
    ]);
    pings.length = 0;
    const failed = await runCli(['backup', '--notify-url', `${base}/ok-2/`, join(dir, 'missing'), join(dir, 't')], env);
    expect(failed.code).toBe(ExitCode.SOURCE);
    expect(pings.map((p) => p.path)).toEqual(['/ok-2/start', '/ok-2/fail']);
    expect(pings[1]!.body).toMatch(/^tapechain: .*missing/m);
  });

  test('verify pings too; a service that answers 500 is tried three times per ping, reported once, and fails nothing', async () => {
    const dir = tmp('notify-down');
    const src = source(dir);
    const env = { PASSPHRASE: 'pw', XDG_CACHE_HOME: join(dir, 'cache') };
    expect((await runCli(['backup', src, join(dir, 't')], env)).code).toBe(0);
    pings.length = 0;
    const v = await runCli(['verify', '--notify-url', `${base}/down`, join(dir, 't')], env);
    expect(v.code).toBe(0);
    expect(pings.map((p) => p.path)).toEqual(['/down/start', '/down/start', '/down/start', '/down', '/down', '/down']);
    expect(v.stderr.match(/^warning: could not ping .*\(HTTP 500; tried 3 times\)$/gm)).toHaveLength(2);
  });

  test('a service that cannot be reached is a warning; a URL that is not http(s) is a usage error', async () => {
    const dir = tmp('notify-bad');
    const src = source(dir);
    const env = { PASSPHRASE: 'pw', XDG_CACHE_HOME: join(dir, 'cache') };
    // a port nothing listens on: the server's own, once closed, is not reused this fast
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const r = await runCli(['backup', '--quiet', '--notify-url', `http://127.0.0.1:${port}/x`, src, join(dir, 't')], env);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/warning: could not ping http:\/\/127\.0\.0\.1:\d+\/x\/start \(ECONNREFUSED; tried 3 times\)/);
    const bad = await runCli(['backup', '--notify-url', 'ftp://x/y', src, join(dir, 't')], env);
    expect({ code: bad.code, err: bad.stderr }).toEqual({ code: ExitCode.USAGE, err: expect.stringMatching(/--notify-url: expected an http:\/\/ or https:\/\/ URL, got "ftp:\/\/x\/y"/) });
  });
});
