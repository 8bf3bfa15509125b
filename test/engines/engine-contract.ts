import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine, RestoreTarget, Source } from '../../src/engines/engine.ts';
import { runBackup } from '../../src/operations/backup.ts';
import { Checker } from '../../src/repository/checker.ts';
import { PassphraseSource } from '../../src/repository/encryption/passphrase.ts';
import { Repository } from '../../src/repository/repository.ts';
import type { ObjectStore } from '../../src/storage/object-store.ts';
import { openStore } from '../../src/storage/open.ts';
import { BACKENDS, makeLocation, type TestLocation } from '../helpers/backends.ts';

/** What an engine brings to the shared round-trip suite: a real source, a restore target, and a comparison. */
export interface EngineFixture {
  engine: Engine;
  /** Creates (or fills) a source on its real server and returns it parsed by the engine. */
  makeSource(): Promise<Source>;
  makeTarget(): Promise<RestoreTarget>;
  /** Throws (or fails an expectation) unless the target holds exactly what the source held. */
  assertSameData(source: Source, target: RestoreTarget): Promise<void>;
  cleanup(): Promise<void>;
}

/** A passphrase source for test repositories (a cheap scrypt cost: BAK_TEST_SCRYPT_LOG_N). */
export function testPassphrase(passphrase = 'contract passphrase'): PassphraseSource {
  return new PassphraseSource('test passphrase', async () => passphrase, { BAK_TEST_SCRYPT_LOG_N: '10' });
}

const VARIANTS = BACKENDS.flatMap((backend) => (['plain', 'encrypted'] as const).map((mode) => [backend, mode] as const));

/**
 * The one round-trip suite every engine joins: on every repository backend, plain and encrypted, back up, check the
 * snapshot at data level, restore, compare, and back up again to see the parent link. An encrypted repository is
 * opened again from its key slot for the restore, as another process would.
 */
export function describeEngineContract(name: string, makeFixture: () => Promise<EngineFixture>): void {
  describe.each(VARIANTS)(`engine contract: ${name} into %s (%s)`, (backend, mode) => {
    const log = pino({ level: 'silent' });
    let location: TestLocation;
    let store: ObjectStore;
    let repo: Repository;
    let fixture: EngineFixture;
    let source: Source;

    beforeAll(async () => {
      location = await makeLocation(backend);
      store = await openStore(location.settings);
      repo = await Repository.init(store, undefined, mode === 'encrypted' ? [testPassphrase()] : []);
      expect(repo.encrypted).toBe(mode === 'encrypted');
      fixture = await makeFixture();
      source = await fixture.makeSource();
    });

    afterAll(async () => {
      await fixture?.cleanup();
      await store?.close?.();
      await location?.cleanup();
    });

    it('backs up, verifies at data level, restores the same data, and links the next snapshot to it', async () => {
      const first = await runBackup(repo, { engine: fixture.engine, source, log, concurrency: 4 });
      expect(first.status).toBe('complete');
      expect(first.engine).toBe(fixture.engine.name);
      expect(first.items.length + first.indexes.length).toBeGreaterThan(0);
      expect(JSON.stringify(first)).not.toMatch(new RegExp(source.secrets.map(escape).join('|') || '^$'));

      const report = await new Checker(repo, 'data').verify(first);
      expect(report.problems).toEqual([]);
      expect(await fixture.engine.verify({ repo, log, concurrency: 4 }, first, 'data')).toEqual([]);

      const target = await fixture.makeTarget();
      const reopened = await Repository.open(store, { keys: [testPassphrase()] });
      await fixture.engine.restore({ repo: reopened, log, concurrency: 4 }, first, target);
      await fixture.assertSameData(source, target);

      const second = await runBackup(repo, { engine: fixture.engine, source, log, concurrency: 4 });
      expect(second.parent).toBe(first.id);
    });
  });
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
