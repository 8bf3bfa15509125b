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
