import { tmpdir } from 'node:os';
import { BakError, errorMessage } from '../../errors.ts';
import type { DoctorCheck, EngineDoctorContext } from '../../operations/doctor.ts';
import { selectDatabases } from './backup.ts';
import { connect, listDatabases, serverVersion } from './connection.ts';
import type { PostgresSource } from './source.ts';
import { findPgTools, probePgTools } from './tools.ts';

/**
 * `bak doctor` for a PostgreSQL source: connects as a backup would (same user, password and database), reads the
 * server's version and the databases the selection covers, finds pg_dump/pg_restore/pg_dumpall/psql the way a backup
 * does (tools.ts) and checks pg_dump's major version against the server's; then the room in the dump staging folder
 * (the system temp folder: backup.ts stages each database's dump under os.tmpdir()).
 */
export async function doctorPostgres(source: PostgresSource, ctx: EngineDoctorContext): Promise<DoctorCheck[]> {
  const conn = source.options.connection;
  const probed = probePgTools(source.options.pgBin);
  probed.catch(() => undefined);
  const checks: DoctorCheck[] = [];
  let major: number | undefined;
  try {
    const client = await connect(conn, conn.database ?? 'postgres');
    try {
      const version = await serverVersion(client);
      major = version.major;
      checks.push({ name: 'connect', status: 'ok', detail: `PostgreSQL ${version.text} at ${conn.host}:${conn.port} as ${conn.user}` });
      try {
        const chosen = selectDatabases(await listDatabases(client), source);
        checks.push({ name: 'databases', status: 'ok', detail: `${chosen.length} to dump: ${chosen.map((d) => d.name).join(', ')}` });
      } catch (err) {
        checks.push({ name: 'databases', status: 'fail', detail: errorMessage(err), fix: 'correct the job options databases / excludeDatabases' });
      }
    } finally {
      await client.end().catch(() => undefined);
    }
  } catch (err) {
    const hint = err instanceof BakError ? err.hint : undefined;
    checks.push({ name: 'connect', status: 'fail', detail: errorMessage(err), fix: hint ?? 'check the host and port in the source URI, that the server runs and that pg_hba.conf lets this host in' });
  }

  const where = source.options.pgBin ? `the job option pgBin (${source.options.pgBin})` : process.env.BAK_PG_BIN ? `BAK_PG_BIN (${process.env.BAK_PG_BIN})` : 'PATH and /usr/lib/postgresql/N/bin';
  if (major !== undefined) {
    try {
      const tools = await findPgTools(major, source.options.pgBin, probed);
      checks.push({ name: 'pg_dump', status: 'ok', detail: `pg_dump ${tools.version}, pg_restore, pg_dumpall and psql in ${tools.dir} (server ${major}; looked in ${where})` });
    } catch (err) {
      checks.push({
        name: 'pg_dump',
        status: 'fail',
        detail: errorMessage(err).replace(/: install postgresql-client.*$/, ''),
        fix: `install postgresql-client-${major} (Debian/Ubuntu: apt-get install postgresql-client-${major}), or set the job option pgBin (or BAK_PG_BIN) to a folder with pg_dump ${major} or newer`,
      });
    }
  } else {
    // No server version to compare with: say what is there.
    const probes = await probed;
    const newest = probes.flatMap((p) => ('tools' in p && p.tools ? [p.tools] : [])).sort((a, b) => b.major - a.major)[0];
    const missing = probes.some((p) => 'missing' in p);
    if (newest && !missing) {
      checks.push({ name: 'pg_dump', status: 'warn', detail: `pg_dump ${newest.version} in ${newest.dir}; whether it is new enough is unknown (not connected)`, fix: 'fix the connection, then run bak doctor again' });
    } else {
      checks.push({ name: 'pg_dump', status: 'fail', detail: `pg_dump not found (looked in ${where})`, fix: 'install postgresql-client-N for the server\'s major version N, or set the job option pgBin (or BAK_PG_BIN) to its bin folder' });
    }
  }

  checks.push(await ctx.stagingRoom(tmpdir(), 'point TMPDIR (in the environment bak runs in) at a file system with more room: pg_dump output is staged there'));
  return checks;
}
