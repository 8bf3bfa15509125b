import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { BakError } from '../../errors.ts';

export interface PgTools {
  dir: string;
  pgDump: string;
  pgRestore: string;
  pgDumpall: string;
  psql: string;
  major: number;
  version: string;
}

const run = promisify(execFile);

/** Candidate folders, most explicit first: option, BAK_PG_BIN, then the newest /usr/lib/postgresql/N/bin, then PATH. */
function candidateDirs(explicit: string | undefined): Array<{ dir: string; explicit: boolean }> {
  const named = explicit ?? process.env.BAK_PG_BIN;
  if (named) return [{ dir: named, explicit: true }];
  const dirs: Array<{ dir: string; explicit: boolean }> = [];
  try {
    const versions = readdirSync('/usr/lib/postgresql')
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) dirs.push({ dir: `/usr/lib/postgresql/${v}/bin`, explicit: false });
  } catch {
    // no Debian-style install
  }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) if (dir) dirs.push({ dir, explicit: false });
  return dirs;
}

/**
 * Finds pg_dump/pg_restore/pg_dumpall/psql of a major version at least the server's: an older
 * pg_dump cannot dump a newer server, and saying so up front beats a cryptic failure mid-backup.
 */
export async function findPgTools(serverMajor: number, explicit?: string): Promise<PgTools> {
  const install = `install postgresql-client-${serverMajor} (Debian/Ubuntu: apt-get install postgresql-client-${serverMajor}) or point BAK_PG_BIN at a folder with pg_dump ${serverMajor} or newer`;
  let best: PgTools | undefined;
  const seen: string[] = [];
  for (const { dir, explicit: isExplicit } of candidateDirs(explicit)) {
    const pgDump = path.join(dir, 'pg_dump');
    if (!existsSync(pgDump)) {
      if (isExplicit) throw new BakError(`pg_dump not found in ${dir}: ${install}`);
      continue;
    }
    const { stdout } = await run(pgDump, ['--version']).catch(() => ({ stdout: '' }));
    const match = /\(PostgreSQL\) (\d+)(\.\d+)?/.exec(stdout);
    if (!match) continue;
    const major = Number(match[1]);
    seen.push(`${pgDump} (${major})`);
    const tools = {
      dir,
      pgDump,
      pgRestore: path.join(dir, 'pg_restore'),
      pgDumpall: path.join(dir, 'pg_dumpall'),
      psql: path.join(dir, 'psql'),
      major,
      version: `${match[1]}${match[2] ?? ''}`,
    };
    if (major >= serverMajor && (!best || major > best.major)) best = tools;
    if (isExplicit) break;
  }
  if (!best) {
    throw new BakError(
      seen.length ? `pg_dump is too old for a PostgreSQL ${serverMajor} server (found ${seen.join(', ')}): ${install}` : `pg_dump not found: ${install}`,
    );
  }
  for (const tool of [best.pgRestore, best.pgDumpall, best.psql]) {
    if (!existsSync(tool)) throw new BakError(`${path.basename(tool)} missing beside ${best.pgDump}: ${install}`);
  }
  return best;
}
