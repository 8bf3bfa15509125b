import { execFile } from 'node:child_process';
import { existsSync, readdirSync, realpathSync } from 'node:fs';
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

/** What one candidate folder holds: its pg_dump's version, or why it does not count. */
type Probe = { dir: string; explicit: boolean; pgDump: string; tools: PgTools | null } | { dir: string; explicit: true; missing: true };

/**
 * Asks every candidate's pg_dump for its version, all at once, each real file once (on Debian /usr/bin/pg_dump
 * and /bin/pg_dump are one wrapper script). Needs no server, so a backup starts it while it connects.
 */
export async function probePgTools(explicit?: string): Promise<Probe[]> {
  const seen = new Set<string>();
  const probes: Array<Promise<Probe>> = [];
  for (const { dir, explicit: isExplicit } of candidateDirs(explicit)) {
    const pgDump = path.join(dir, 'pg_dump');
    if (!existsSync(pgDump)) {
      if (isExplicit) probes.push(Promise.resolve({ dir, explicit: true, missing: true }));
      continue;
    }
    let real = pgDump;
    try {
      real = realpathSync(pgDump);
    } catch {
      // keep the name as it is
    }
    // One file under two names answers the same: the first folder (most explicit) is the one recorded.
    if (seen.has(real)) continue;
    seen.add(real);
    probes.push(
      run(pgDump, ['--version'])
        .catch(() => ({ stdout: '' }))
        .then(({ stdout }): Probe => {
          const match = /\(PostgreSQL\) (\d+)(\.\d+)?/.exec(stdout);
          if (!match) return { dir, explicit: isExplicit, pgDump, tools: null };
          const tools: PgTools = {
            dir,
            pgDump,
            pgRestore: path.join(dir, 'pg_restore'),
            pgDumpall: path.join(dir, 'pg_dumpall'),
            psql: path.join(dir, 'psql'),
            major: Number(match[1]),
            version: `${match[1]}${match[2] ?? ''}`,
          };
          return { dir, explicit: isExplicit, pgDump, tools };
        }),
    );
  }
  return Promise.all(probes);
}

/**
 * Finds pg_dump/pg_restore/pg_dumpall/psql of a major version at least the server's: an older
 * pg_dump cannot dump a newer server, and saying so up front beats a cryptic failure mid-backup.
 * `probed` is a `probePgTools` already under way, if the caller started one.
 */
export async function findPgTools(serverMajor: number, explicit?: string, probed: Promise<Probe[]> = probePgTools(explicit)): Promise<PgTools> {
  const install = `install postgresql-client-${serverMajor} (Debian/Ubuntu: apt-get install postgresql-client-${serverMajor}) or point BAK_PG_BIN at a folder with pg_dump ${serverMajor} or newer`;
  let best: PgTools | undefined;
  const seen: string[] = [];
  for (const probe of await probed) {
    if ('missing' in probe) throw new BakError(`pg_dump not found in ${probe.dir}: ${install}`);
    const tools = probe.tools;
    if (!tools) continue;
    seen.push(`${probe.pgDump} (${tools.major})`);
    if (tools.major >= serverMajor && (!best || tools.major > best.major)) best = tools;
    if (probe.explicit) break;
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
