import { z } from 'zod';

/**
 * Restore-target options every table engine takes from the CLI's generic flags (`--force`, `--dry-run`,
 * `--no-verify`, `--check-only`, `--jobs`, and `bak verify --level restore`'s scratch restore). What `force` and
 * `scratch` mean in detail is the engine's, said in USAGE.md.
 */
export const tableRestoreFields = {
  /** Restore into a target that already holds tables. */
  force: z.boolean().default(false),
  dryRun: z.boolean().default(false),
  verify: z.boolean().default(true),
  checkOnly: z.boolean().default(false),
  /** `bak verify --level restore`: throwaway names in the target, checked and dropped. */
  scratch: z.boolean().default(false),
  /** Tables loaded at once (`--jobs`). */
  jobs: z.number().int().positive().max(64).default(4),
};
