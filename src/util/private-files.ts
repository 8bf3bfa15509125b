import { stat } from 'node:fs/promises';

/**
 * What bak writes on local disk (repository folders, staging, exports) is whole databases: readable by its
 * owner only, whatever the umask (a umask only removes bits, so these modes hold under 022 and 077 alike).
 */
export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** The folder's mode when its group or others may read or enter it, else undefined (or when it does not exist). */
export async function openToOthers(folder: string): Promise<number | undefined> {
  const st = await stat(folder).catch(() => undefined);
  if (!st) return undefined;
  const mode = st.mode & 0o777;
  return mode & 0o077 ? mode : undefined;
}

/**
 * Runs `start` (a child process's spawn) under umask 077, so that what the tool writes (pg_dump's dump files,
 * Datomic's backup folder in staging) is its owner's only whatever bak's own umask: the child inherits the mask at
 * spawn, which is synchronous, and bak's umask is back before anything else runs.
 */
export function withPrivateUmask<T>(start: () => T): T {
  const previous = process.umask(0o077);
  try {
    return start();
  } finally {
    process.umask(previous);
  }
}
