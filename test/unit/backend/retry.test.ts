import { describe, expect, test } from '@jest/globals';
import { listAll } from '../../../src/backend/backend.js';
import { FaultyBackend } from '../../../src/backend/faulty.js';
import { MemoryBackend } from '../../../src/backend/memory.js';
import { RetryBackend } from '../../../src/backend/wrappers.js';
import { expectCutGetsResumed, expectEndlessCutsFail } from '../../helpers/resume-get.js';

describe('RetryBackend', () => {
  test('names the operation it retries without stray spaces (a listing of the whole target is "list")', async () => {
    const seen: string[] = [];
    const b = new RetryBackend(new FaultyBackend(new MemoryBackend(), [{ method: 'list', kind: 'transient', times: 2 }]), {
      baseDelayMs: 1,
      onRetry: (op, attempt, err) => seen.push(`retrying ${op} (attempt ${attempt + 1}): ${err.message}`),
    });
    expect(await listAll(b)).toEqual([]);
    expect(seen).toHaveLength(2);
    for (const line of seen) expect(line).toMatch(/^retrying list \(attempt \d\): /);
  });

  test('a download cut mid-stream goes on by ranged GETs, byte-exact', () => expectCutGetsResumed(new MemoryBackend(), 300_000, 3));
  test('a download cut more often in a row than the retries fails', () => expectEndlessCutsFail(new MemoryBackend()));
});
