import type { Command } from 'commander';
import { awsKmsSource, gcpKmsSource, newPassphraseSource } from '../../config/key-sources.ts';
import { UsageError } from '../../errors.ts';
import { assertSlotId, type KeySlot } from '../../repository/encryption/key-slots.ts';
import type { KeySource } from '../../repository/encryption/key-source.ts';
import type { CliContext } from '../context.ts';
import { formatTable, formatTime, printJson } from '../output.ts';
import { action } from '../program.ts';

/** A slot as `--json` shows it: what it is and where it came from, never its wrapped key or salt. */
export function describeSlot(slot: KeySlot): Record<string, unknown> {
  const base = { id: slot.id, kind: slot.kind, createdAt: slot.createdAt, host: slot.host };
  switch (slot.kind) {
    case 'passphrase':
      return { ...base, kdf: `scrypt N=2^${slot.kdf.logN} r=${slot.kdf.r} p=${slot.kdf.p}` };
    case 'aws-kms':
      return { ...base, keyId: slot.keyId, keyArn: slot.keyArn, ...(slot.region ? { region: slot.region } : {}) };
    case 'gcp-kms':
      return { ...base, keyName: slot.keyName };
  }
}

export function slotSummary(slot: KeySlot): string {
  switch (slot.kind) {
    case 'passphrase':
      return `passphrase (scrypt N=2^${slot.kdf.logN})`;
    case 'aws-kms':
      return `AWS KMS ${slot.keyArn}${slot.keyId !== slot.keyArn ? ` (${slot.keyId})` : ''}`;
    case 'gcp-kms':
      return `Google Cloud KMS ${slot.keyName}`;
  }
}

interface AddFlags {
  newPasswordFile?: string;
  newPasswordCommand?: string;
  keyId?: string;
  keyName?: string;
}

/** The source `bak key add <kind>` wraps the master key with: a new passphrase, or a KMS key with the repository's KMS settings. */
function sourceToAdd(ctx: CliContext, kind: string, flags: AddFlags): KeySource {
  const resolved = ctx.resolveRepository();
  const where = resolved.name !== undefined ? `repositories.${resolved.name}.encryption` : 'encryption';
  switch (kind) {
    case 'passphrase': {
      const source = newPassphraseSource(flags);
      if (!source) throw new UsageError('bak key add passphrase needs the new passphrase: BAK_NEW_PASSWORD, --new-password-file or --new-password-command');
      return source;
    }
    case 'aws-kms': {
      const source = awsKmsSource(resolved.encryption?.awsKms, flags.keyId, where);
      if (!source || !(flags.keyId ?? resolved.encryption?.awsKms?.keyId)) throw new UsageError('bak key add aws-kms needs the key: --key-id, or encryption.awsKms.keyId in the config');
      return source;
    }
    case 'gcp-kms': {
      const source = gcpKmsSource(resolved.encryption?.gcpKms, flags.keyName, resolved.settings);
      if (!source || !(flags.keyName ?? resolved.encryption?.gcpKms?.keyName)) throw new UsageError('bak key add gcp-kms needs the key: --key-name, or encryption.gcpKms.keyName in the config');
      return source;
    }
    default:
      throw new UsageError(`"${kind}" is not a key kind: passphrase, aws-kms or gcp-kms`);
  }
}

export function registerKey(program: Command): void {
  const key = program.command('key').description("an encrypted repository's key slots: each wraps the one master key; adding or removing one rewrites no data");

  key
    .command('list')
    .description('list the key slots, and which one opened the repository')
    .action(
      action(async (ctx) => {
        const repo = await ctx.openRepository();
        if (!repo.encrypted) throw new UsageError(`the repository at ${repo.description} is not encrypted: it has no keys`);
        const { slots, unreadable } = await repo.keySlots();
        const opened = repo.openedWith?.slot.id;
        for (const u of unreadable) ctx.log.warn(`${u.key} is unreadable: ${u.problem}`);
        if (ctx.out.json) {
          printJson(ctx.out, { repository: repo.description, slots: slots.map((s) => ({ ...describeSlot(s), openedThisRun: s.id === opened })), unreadable });
          return;
        }
        ctx.out.write(formatTable(['SLOT', 'KIND', 'CREATED', 'HOST', 'KEY', ''], slots.map((s) => [s.id, s.kind, formatTime(s.createdAt), s.host, slotSummary(s), s.id === opened ? '(opened this run)' : ''])));
      }),
    );

  key
    .command('add')
    .description('wrap the master key with one more key source, in a new slot (opening needs an existing key)')
    .argument('<kind>', 'passphrase, aws-kms or gcp-kms')
    .option('--new-password-file <file>', 'passphrase: the new passphrase, the first line of this file (or BAK_NEW_PASSWORD)')
    .option('--new-password-command <command>', 'passphrase: the new passphrase, the first line this command prints')
    .option('--key-id <id>', 'aws-kms: the KMS key (id, ARN or alias/…); default encryption.awsKms.keyId')
    .option('--key-name <name>', 'gcp-kms: projects/…/cryptoKeys/…; default encryption.gcpKms.keyName (not verified against a server)')
    .action(
      action(async (ctx, kind: string, flags: AddFlags) => {
        const source = sourceToAdd(ctx, kind, flags);
        const repo = await ctx.openRepository();
        const slot = await repo.addKeySlot(source);
        if (ctx.out.json) printJson(ctx.out, { repository: repo.description, added: describeSlot(slot) });
        else ctx.out.write(`added key slot ${slot.id}: ${slotSummary(slot)}\n`);
      }),
    );

  key
    .command('remove')
    .description('remove a key slot (never the last one, nor the one this command opened with)')
    .argument('<slot-id>', 'as bak key list shows it')
    .action(
      action(async (ctx, id: string) => {
        assertSlotId(id);
        const repo = await ctx.openRepository();
        await repo.removeKeySlot(id);
        if (ctx.out.json) printJson(ctx.out, { repository: repo.description, removed: id });
        else ctx.out.write(`removed key slot ${id}\n`);
      }),
    );

  key
    .command('passwd')
    .description('change the passphrase that opened the repository: a new slot for the new one, then the old slot removed')
    .option('--new-password-file <file>', 'the new passphrase, the first line of this file (or BAK_NEW_PASSWORD)')
    .option('--new-password-command <command>', 'the new passphrase, the first line this command prints')
    .action(
      action(async (ctx, flags: AddFlags) => {
        const source = newPassphraseSource(flags);
        if (!source) throw new UsageError('bak key passwd needs the new passphrase: BAK_NEW_PASSWORD, --new-password-file or --new-password-command');
        const repo = await ctx.openRepository();
        const old = repo.openedWith;
        if (!old || old.slot.kind !== 'passphrase') throw new UsageError('bak key passwd changes a passphrase: open the repository with the passphrase to change (a KMS slot is replaced with bak key add and remove)');
        const slot = await repo.addKeySlot(source);
        await repo.removeKeySlot(old.slot.id, { replacedBy: slot.id });
        if (ctx.out.json) printJson(ctx.out, { repository: repo.description, added: describeSlot(slot), removed: old.slot.id });
        else ctx.out.write(`changed the passphrase: key slot ${slot.id} added, ${old.slot.id} removed\n`);
      }),
    );
}
