import type { Command } from 'commander';
import { checkKeySources, type KeySourceCheck, type Usability } from '../../config/encryption-check.ts';
import { resolveRepository } from '../../config/resolve.ts';
import { resolveSecret, resolveSecretsDeep, secretReferences } from '../../config/secrets.ts';
import { findEngine } from '../../engines/registry.ts';
import { BakError, ExitCode } from '../../errors.ts';
import { redactObject, redactUri } from '../../util/redact.ts';
import { describeZodError } from '../../util/validation.ts';
import { printJson } from '../output.ts';
import { action } from '../program.ts';

const USABLE: Record<Usability, string> = { yes: 'usable', no: 'NOT usable', unknown: 'maybe usable' };

export function registerConfigCommands(program: Command): void {
  const config = program.command('config').description('work with the config file');
  config
    .command('check')
    .description('validate the config file and print the resolved jobs, secrets redacted; exit 2 if anything is wrong')
    .action(
      action(async (ctx) => {
        const { file, config: cfg } = ctx.config;
        const problems: string[] = [];
        const notes: string[] = [];

        // Every secret reference must resolve here, or cron will fail at 3 a.m. instead of now.
        const checkSecrets = (value: unknown, where: string) => {
          for (const site of secretReferences(value, where)) {
            try {
              resolveSecret(site.ref, site.where);
            } catch (err) {
              problems.push((err as Error).message);
            }
          }
        };
        checkSecrets(cfg.repositories, 'repositories');

        // An encrypted repository's key sources: which of them this machine can use (no command run, no KMS called).
        const keySources: Record<string, KeySourceCheck[]> = {};
        for (const [name, repo] of Object.entries(cfg.repositories)) {
          if (!repo.encryption) continue;
          keySources[name] = checkKeySources(repo.encryption, `repositories.${name}.encryption`);
          for (const c of keySources[name]) {
            if (c.problem) problems.push(c.problem);
            if (c.note) notes.push(c.note);
          }
        }

        const jobs = Object.entries(cfg.jobs).map(([name, job]) => {
          checkSecrets(job.options, `jobs.${name}.options`);
          if (job.hooks) checkSecrets(job.hooks, `jobs.${name}.hooks`);
          let repository: string;
          try {
            const resolved = resolveRepository(cfg, { job: name }, { ...process.env, BAK_REPOSITORY: '' });
            repository = `${resolved.name ? `${resolved.name} = ` : ''}${resolved.settings.url}`;
          } catch (err) {
            problems.push(`jobs.${name}.repository: ${(err as Error).message}`);
            repository = '(unresolved)';
          }
          const engine = findEngine(job.engine);
          if (!engine) notes.push(`jobs.${name}: the ${job.engine} engine is not in this build yet; its options are not checked`);
          else {
            // Validate the options as the engine will see them: secret references resolved (a missing one is reported above).
            let options: unknown;
            try {
              options = resolveSecretsDeep(job.options, `jobs.${name}.options`).value;
            } catch {
              options = undefined;
            }
            const parsed = options === undefined ? undefined : engine.optionsSchema.safeParse(options);
            if (parsed && !parsed.success) problems.push(`jobs.${name}.options:\n${describeZodError(parsed.error, job.options)}`);
          }
          return {
            name,
            engine: job.engine,
            source: redactUri(job.source),
            repository,
            options: redactObject(job.options),
            retention: job.retention ?? null,
            tags: job.tags,
            hooks: job.hooks ? redactObject(job.hooks) : null,
          };
        });

        const result = {
          file: file ?? null,
          ok: problems.length === 0,
          problems,
          notes,
          defaults: cfg.defaults,
          repositories: redactObject(cfg.repositories),
          keySources,
          jobs,
        };
        if (ctx.out.json) printJson(ctx.out, result);
        else {
          ctx.out.write(`config: ${file ?? '(none: built-in defaults)'}\n`);
          for (const [name, repo] of Object.entries(result.repositories as Record<string, { url: string; encryption?: unknown }>)) {
            ctx.out.write(`repository ${name}: ${repo.url}\n`);
            if (repo.encryption === undefined) continue;
            ctx.out.write(`  encryption  ${JSON.stringify(repo.encryption)}\n`);
            const width = Math.max(...keySources[name]!.map((c) => c.source.length));
            for (const c of keySources[name]!) ctx.out.write(`  key ${c.source.padEnd(width)}  ${USABLE[c.usable]}: ${c.detail}\n`);
          }
          for (const job of jobs) {
            ctx.out.write(`\njob ${job.name}\n  engine      ${job.engine}\n  source      ${job.source}\n  repository  ${job.repository}\n`);
            if (Object.keys(job.options as object).length) ctx.out.write(`  options     ${JSON.stringify(job.options)}\n`);
            ctx.out.write(`  retention   ${job.retention ? JSON.stringify(job.retention) : 'none (never pruned)'}\n`);
            if (job.hooks) ctx.out.write(`  hooks       ${JSON.stringify(job.hooks)}\n`);
          }
          for (const note of notes) ctx.out.write(`note: ${note}\n`);
          for (const problem of problems) process.stderr.write(`problem: ${problem}\n`);
          ctx.out.write(problems.length ? `\nconfig has ${problems.length} problem(s)\n` : '\nconfig ok\n');
        }
        if (problems.length) throw new BakError(`config check found ${problems.length} problem(s)`, ExitCode.usage);
      }),
    );
}
