import { z } from 'zod';
import { ENGINE_NAMES } from '../engines/names.ts';

/**
 * A secret is never required to sit in the config file: `{"env": "NAME"}` reads it from the
 * environment, `{"file": "/path"}` from a file (first line), and a plain string is accepted for tests.
 */
export const secretSchema = z.union([
  z.string(),
  z.object({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name') }).strict(),
  z.object({ file: z.string().min(1) }).strict(),
]);
export type SecretRef = z.infer<typeof secretSchema>;

const positiveInt = z.number().int().positive();

/**
 * What opens (and, at init, wraps) an encrypted repository's key. Any of them may be given; each is tried against the
 * slots of its kind. BAK_PASSWORD, BAK_PASSWORD_FILE, BAK_PASSWORD_COMMAND and --password-file/--password-command
 * come before `password` and `passwordCommand` here.
 */
export const encryptionConfigSchema = z
  .object({
    password: secretSchema.optional(),
    /** Run by the shell; its first line of output is the passphrase (as restic's --password-command). */
    passwordCommand: z.string().min(1).optional(),
    awsKms: z
      .object({
        /** Needed to add a slot (init, key add); opening uses the key a slot names. */
        keyId: z.string().min(1).optional(),
        region: z.string().optional(),
        endpoint: z.url().optional(),
        accessKeyId: secretSchema.optional(),
        secretAccessKey: secretSchema.optional(),
        sessionToken: secretSchema.optional(),
      })
      .strict()
      .optional(),
    gcpKms: z
      .object({
        /** projects/P/locations/L/keyRings/R/cryptoKeys/K; needed to add a slot. */
        keyName: z.string().regex(/^projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/]+$/, 'projects/P/locations/L/keyRings/R/cryptoKeys/K').optional(),
        apiEndpoint: z.string().min(1).optional(),
        keyFilename: z.string().optional(),
        projectId: z.string().optional(),
      })
      .strict()
      .optional(),
  })
  .strict();
export type EncryptionConfig = z.infer<typeof encryptionConfigSchema>;

export const repositoryConfigSchema = z
  .object({
    url: z.string().min(1),
    /** S3-compatible servers (MinIO, Ceph, R2 …). */
    endpoint: z.url().optional(),
    region: z.string().optional(),
    forcePathStyle: z.boolean().optional(),
    checksums: z.enum(['when-supported', 'when-required']).optional(),
    accessKeyId: secretSchema.optional(),
    secretAccessKey: secretSchema.optional(),
    sessionToken: secretSchema.optional(),
    /** Google Cloud Storage. */
    apiEndpoint: z.url().optional(),
    projectId: z.string().optional(),
    keyFilename: z.string().optional(),
    uploadConcurrency: positiveInt.optional(),
    /** Key sources: a repository with this section is expected to be encrypted (a plain one is refused). */
    encryption: encryptionConfigSchema.optional(),
  })
  .strict();
export type RepositoryConfig = z.infer<typeof repositoryConfigSchema>;

/** A duration like `36h`, `7d`, `2w`, `1y6m`. */
export const durationSchema = z.string().regex(/^(\d+[hdwmy])+$/, 'a duration such as 36h, 7d, 2w, 6m or 1y');

export const retentionSchema = z
  .object({
    keepLast: positiveInt.optional(),
    keepHourly: positiveInt.optional(),
    keepDaily: positiveInt.optional(),
    keepWeekly: positiveInt.optional(),
    keepMonthly: positiveInt.optional(),
    keepYearly: positiveInt.optional(),
    keepWithin: durationSchema.optional(),
    maxAgeDays: positiveInt.optional(),
    minKeep: z.number().int().nonnegative().optional(),
    timeZone: z.string().optional(),
  })
  .strict()
  .refine((r) => Object.keys(r).some((k) => k !== 'minKeep' && k !== 'timeZone'), {
    message: 'needs at least one keep rule (keepLast, keepDaily, keepWithin, maxAgeDays …); minKeep alone is a floor, not a rule',
  });
export type RetentionConfig = z.infer<typeof retentionSchema>;

/** Pinged around each run of a job; the URLs are secret references (a healthchecks URL is a credential) and never logged. */
export const hooksSchema = z
  .object({
    /** The healthchecks.io convention: POST <url>/start, then <url> on success or <url>/fail, the summary as the body. */
    ping: secretSchema.optional(),
    /** POST of a JSON body ({event, job, ok, summary …}) on start, success and failure. */
    webhook: secretSchema.optional(),
    /** Each request gives up after this long; a failed ping is a warning, never a failed backup. */
    timeoutSeconds: positiveInt.max(120).optional(),
  })
  .strict();
export type HooksConfig = z.infer<typeof hooksSchema>;

export const jobConfigSchema = z
  .object({
    engine: z.enum(ENGINE_NAMES),
    source: z.string().min(1),
    /** A name from `repositories`, or a repository URL. */
    repository: z.string().min(1).optional(),
    /** Engine options; each engine validates its own when it runs. */
    options: z.record(z.string(), z.unknown()).default({}),
    retention: retentionSchema.optional(),
    tags: z.array(z.string().min(1)).default([]),
    hooks: hooksSchema.optional(),
  })
  .strict();
export type JobConfig = z.infer<typeof jobConfigSchema>;

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export const configSchema = z
  .object({
    $schema: z.string().optional(),
    defaults: z
      .object({
        repository: z.string().min(1).optional(),
        concurrency: positiveInt.max(64).optional(),
        /** Blobs younger than this are never pruned (gc). */
        pruneGracePeriod: durationSchema.optional(),
        /** Prometheus text-format file (node_exporter's textfile collector) that backup, run and verify update per job. */
        metricsFile: z.string().min(1).optional(),
      })
      .strict()
      .default({}),
    repositories: z.record(z.string().regex(NAME, 'a name of letters, digits, ".", "_" or "-"'), repositoryConfigSchema).default({}),
    jobs: z.record(z.string().regex(NAME, 'a name of letters, digits, ".", "_" or "-"'), jobConfigSchema).default({}),
  })
  .strict()
  .superRefine((config, ctx) => {
    const refs: Array<[string[], string | undefined]> = [[['defaults', 'repository'], config.defaults.repository]];
    for (const [name, job] of Object.entries(config.jobs)) refs.push([['jobs', name, 'repository'], job.repository]);
    for (const [path, ref] of refs) {
      if (ref !== undefined && !isRepositoryUrl(ref) && !(ref in config.repositories)) {
        ctx.addIssue({ code: 'custom', path, message: `no repository named "${ref}" in "repositories" (and not a URL)` });
      }
    }
  });
export type Config = z.infer<typeof configSchema>;

export function isRepositoryUrl(value: string): boolean {
  // Any scheme counts as a URL here, so an unsupported one gets the storage layer's precise message.
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(value) || value.startsWith('/') || value.startsWith('.');
}
