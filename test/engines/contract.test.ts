import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ENGINE_NAMES } from '../../src/engines/names.ts';
import { getEngine, registeredEngines } from '../../src/engines/registry.ts';
import { postgresEngine } from '../../src/engines/postgres/index.ts';
import { dirEngine, dirUri } from '../fixtures/dir-engine.ts';
import { createRichDatabase, dropDatabase, pgUri, requirePostgres, schemaDump, tableFingerprints, uniqueDbName } from '../helpers/postgres.ts';
import { makeFixtureTree, readTree } from '../helpers/fixture-tree.ts';
import { describeEngineContract, type EngineFixture } from './engine-contract.ts';

/** Engine fixtures, one per engine; a built-in engine without one fails the check below. */
const fixtures: Record<string, () => Promise<EngineFixture>> = {
  'fixture-dir': async () => {
    const dirs: string[] = [];
    return {
      engine: dirEngine,
      makeSource: async () => {
        const tree = await makeFixtureTree({ bigBytes: 3 * 1024 * 1024, smallFiles: 50 });
        dirs.push(tree);
        return dirEngine.parseSource(dirUri(tree), {});
      },
      makeTarget: async () => {
        const target = await mkdtemp(path.join(tmpdir(), 'bak-target-'));
        dirs.push(target);
        return { uri: dirUri(target), options: {} };
      },
      assertSameData: async (source, target) => {
        const read = (uri: string) => readTree(fileURLToPath(uri.replace(/^dir:/, 'file:')));
        const [want, got] = await Promise.all([read(source.uri), read(target.uri)]);
        expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
        for (const [name, content] of want) expect(got.get(name)!.equals(content), name).toBe(true);
      },
      cleanup: async () => {
        await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
      },
    };
  },
};

fixtures.postgres = async () => {
  const server = await requirePostgres();
  const created: string[] = [];
  const dbOf = (uri: string) => decodeURIComponent(new URL(uri).pathname.slice(1));
  return {
    engine: postgresEngine,
    makeSource: async () => {
      const db = await createRichDatabase(server, 'bakc_src');
      created.push(db);
      return postgresEngine.parseSource(pgUri(server, db), { password: server.password, pgBin: server.bin, globals: false });
    },
    makeTarget: async () => {
      const db = uniqueDbName('bakc_dst');
      created.push(db);
      return { uri: pgUri(server, db), options: { password: server.password, pgBin: server.bin } };
    },
    // Checked independently of bak's own digests: the schema as pg_dump sees it, and every table's rows.
    assertSameData: async (source, target) => {
      const [from, to] = [dbOf(source.uri), dbOf(target.uri)];
      expect(await schemaDump(server, to)).toEqual(await schemaDump(server, from));
      expect(await tableFingerprints(server, to)).toEqual(await tableFingerprints(server, from));
    },
    cleanup: async () => {
      for (const db of created) await dropDatabase(server, db);
    },
  };
};

describe('engine registry', () => {
  it('knows every engine by name and says plainly which are not built yet', () => {
    for (const name of ENGINE_NAMES) {
      if (registeredEngines().some((e) => e.name === name)) expect(getEngine(name).name).toBe(name);
      else expect(() => getEngine(name)).toThrow(`the ${name} engine is not available in this version of bak yet`);
    }
    expect(() => getEngine('oracle')).toThrow(/unknown engine "oracle"/);
  });

  it('every built-in engine joins the contract suite', () => {
    for (const engine of registeredEngines()) expect(fixtures[engine.name], `no contract fixture for ${engine.name}`).toBeDefined();
  });
});

for (const [name, make] of Object.entries(fixtures)) describeEngineContract(name, make);
