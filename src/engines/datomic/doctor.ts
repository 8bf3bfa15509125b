import { constants, existsSync } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { errorMessage } from '../../errors.ts';
import type { DoctorCheck, EngineDoctorContext } from '../../operations/doctor.ts';
import { datomicBinOf, defaultStaging, type DatomicSource } from './source.ts';

/**
 * `bak doctor` for a Datomic source: bin/datomic where the backup looks for it (option datomicBin, else
 * $DATOMIC_HOME/bin/datomic) exists and is executable, and the staging folder backup-db writes into has room. The
 * database itself is reached only by backup-db (a JVM start that takes seconds): not checked here.
 */
export async function doctorDatomic(source: DatomicSource, ctx: EngineDoctorContext): Promise<DoctorCheck[]> {
  const o = source.options;
  const checks: DoctorCheck[] = [];
  const fix = 'set the job option datomicBin to bin/datomic of a Datomic Pro distribution, or DATOMIC_HOME to the distribution';
  try {
    const bin = datomicBinOf(o);
    const st = await stat(bin).catch(() => undefined);
    if (!st || !st.isFile()) checks.push({ name: 'bin/datomic', status: 'fail', detail: `${bin} does not exist`, fix });
    else {
      const executable = await access(bin, constants.X_OK).then(() => true, () => false);
      checks.push(
        executable
          ? { name: 'bin/datomic', status: 'ok', detail: `${bin} is executable (the database is reached by backup-db only: not checked)` }
          : { name: 'bin/datomic', status: 'fail', detail: `${bin} is not executable by this user`, fix: `chmod +x ${bin}, or ${fix}` },
      );
    }
  } catch (err) {
    checks.push({ name: 'bin/datomic', status: 'fail', detail: errorMessage(err), fix });
  }
  const staging = path.resolve(o.staging ?? defaultStaging(ctx.sourceKey));
  const kept = !o.fresh && existsSync(path.join(staging, 'roots'));
  checks.push(await ctx.stagingRoom(staging, 'set the job option staging to a folder on a file system with more room (backup-db writes every segment there)', { kept }));
  return checks;
}
