import * as path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { crc32 } from 'node:zlib';
import { uncompress } from 'snappy';
import { z } from 'zod';
import { BakError, MismatchError, UsageError } from '../../errors.ts';
import { openStore } from '../../storage/open.ts';
import type { ObjectStore } from '../../storage/object-store.ts';
import type { BackupContext, BackupResult } from '../engine.ts';
import { newAvroDecoder } from './avro.ts';
import { tableFromAvro, unsupportedEntity, viewFromAvro, type AvroRecordSchema } from './avro-schema.ts';
import type { BackedUpTable } from './backup.ts';
import { cellCodec, type CellCodec } from './cells.ts';
import { EXPORT_MANIFEST, md5Tap } from './export.ts';
import { keepForeignKeysWithin, parentsFirst, restoreDdl, type DatabaseSchema, type TableSchema, type ViewSchema } from './schema.ts';
import { describeZodError } from '../../util/validation.ts';
import { databasePath, type SpannerSource } from './source.ts';
import { SPANNER_DIGEST_ALGORITHM } from './table-digest.ts';
import { addDdlItem, TableFileWriter } from './table-files.ts';
import type { RawCell } from './types.ts';

const listingSchema = z
  .object({
    tables: z.array(z.object({ name: z.string().min(1), manifestFile: z.string().min(1).optional(), dataFiles: z.array(z.string()).optional() }).loose()),
    changeStreams: z.array(z.object({ name: z.string() }).loose()).optional(),
    sequences: z.array(z.object({ name: z.string() }).loose()).optional(),
    dialect: z.string().optional(),
  })
  .loose();

const tableManifestSchema = z.object({ files: z.array(z.object({ name: z.string().min(1), md5: z.string().min(1) }).loose()) }).loose();

/** Avro's snappy codec: each block is snappy-compressed, followed by the CRC-32 (big-endian) of its uncompressed bytes. */
function snappyBlock(block: Buffer, done: (err: Error | null, data?: Buffer) => void): void {
  if (block.length < 4) return done(new Error('snappy block shorter than its checksum'));
  uncompress(block.subarray(0, block.length - 4)).then(
    (data) => {
      const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data);
      if (crc32(bytes) >>> 0 !== block.readUInt32BE(block.length - 4)) done(new Error('snappy block fails its CRC-32'));
      else done(null, bytes);
    },
    (err: Error) => done(err),
  );
}

function storeUrl(location: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(location) ? location : pathToFileURL(path.resolve(location)).href;
}

async function readJson<T>(store: ObjectStore, key: string, schema: z.ZodType<T>, where: string): Promise<T> {
  let text: string;
  try {
    text = (await store.getBuffer(key)).toString('utf8');
  } catch (err) {
    throw new BakError(`${where}: cannot read ${key}: ${(err as Error).message}`, 1, { cause: err });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new BakError(`${where}: ${key} is not JSON: ${(err as Error).message}`, 2, { cause: err });
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new BakError(`${where}: ${key}: ${describeZodError(parsed.error, value).replace(/\n/g, '; ')}`, 2);
  return parsed.data;
}

/** A TIMESTAMP Google's export wrote as a long of microseconds (its `shouldExportTimestampAsLogicalType`), as text. */
function timestampOfMicros(micros: bigint): string {
  const seconds = micros / 1_000_000n - (micros % 1_000_000n < 0n ? 1n : 0n);
  const fraction = Number(micros - seconds * 1_000_000n);
  const iso = new Date(Number(seconds) * 1000).toISOString().replace(/\.000Z$/, '');
  return `${iso}${fraction ? `.${String(fraction).padStart(6, '0').replace(/0+$/, '')}` : ''}Z`;
}

/** Reads one data file, checking its MD5 against the manifest's, and hands out each record as raw cells. */
async function readDataFile(store: ObjectStore, file: { name: string; md5: string }, table: TableSchema, onRow: (row: RawCell[]) => Promise<void>): Promise<void> {
  const codecs: Array<CellCodec | undefined> = table.columns.map((c) => (c.generationExpression === null ? cellCodec(c.type, c.nullable) : undefined));
  const sum = md5Tap();
  const decoder = newAvroDecoder({ snappy: snappyBlock });
  const consume = (async () => {
    for await (const record of decoder as AsyncIterable<Record<string, unknown>>) {
      const row: RawCell[] = new Array(codecs.length);
      for (let i = 0; i < codecs.length; i++) {
        const codec = codecs[i];
        if (!codec) {
          row[i] = null;
          continue;
        }
        let value = record[table.columns[i]!.name];
        if (table.columns[i]!.type.code === 'TIMESTAMP' && typeof value === 'bigint') value = timestampOfMicros(value);
        row[i] = codec.fromAvro(value === undefined ? null : value);
      }
      await onRow(row);
    }
  })();
  const damaged = (actual: string) => new MismatchError(`data file ${file.name} of table ${table.name} has MD5 ${actual}, its manifest says ${file.md5}: the export is damaged`);
  try {
    await Promise.all([pipeline(await store.get(file.name), sum.tap, decoder), consume]);
  } catch (err) {
    // A file that does not decode is most likely damaged: its MD5 says so (exit 3) better than the decoder's error.
    const actual = await md5Of(store, file.name).catch(() => undefined);
    if (actual !== undefined && actual !== file.md5) throw damaged(actual);
    throw new BakError(`data file ${file.name} of table ${table.name}: ${(err as Error).message}`, 1, { cause: err });
  }
  const actual = sum.md5();
  if (actual !== file.md5) throw damaged(actual);
}

async function md5Of(store: ObjectStore, name: string): Promise<string> {
  const sum = md5Tap();
  await pipeline(await store.get(name), sum.tap, new Writable({ write: (_chunk, _enc, done) => done() }));
  return sum.md5();
}

/** The schema of the first data file of an export entry: Google's properties in its header. */
async function schemaOfFile(store: ObjectStore, name: string): Promise<AvroRecordSchema> {
  const decoder = newAvroDecoder({ snappy: snappyBlock });
  const header = new Promise<AvroRecordSchema>((resolve, reject) => {
    decoder.once('metadata', (_type: unknown, _codec: unknown, h: { meta: Record<string, Buffer> }) => {
      try {
        resolve(JSON.parse(h.meta['avro.schema']!.toString('utf8')) as AvroRecordSchema);
      } catch (err) {
        reject(err as Error);
      }
    });
    decoder.once('error', reject);
  });
  const source = await store.get(name);
  source.pipe(decoder);
  try {
    return await header;
  } catch (err) {
    throw new BakError(`${name}: not an Avro object container file: ${(err as Error).message}`, 2, { cause: err });
  } finally {
    source.unpipe(decoder);
    source.destroy();
    decoder.destroy();
  }
}

/**
 * Adopts a folder written by Google's "Cloud Spanner to Avro" Dataflow export (local, or gs://) as a snapshot of the
 * source database: spanner-export.json and each table's manifest are read, every data file is checked against its
 * MD5 while its records are decoded (snappy, deflate or null codec), and the rows are stored as export mode stores
 * them, with row counts and digests (over the columns the export has: generated columns carry no values there). The
 * database itself is not contacted.
 */
export async function adoptDataflowExport(ctx: BackupContext & { source: SpannerSource }): Promise<BackupResult> {
  const location = ctx.source.options.fromExport!;
  const where = `Dataflow export ${location}`;
  const store = await openStore({ url: storeUrl(location) });
  try {
    const listing = await readJson(store, EXPORT_MANIFEST, listingSchema, where);
    if (listing.dialect && listing.dialect !== 'GOOGLE_STANDARD_SQL') throw new UsageError(`${where} is of a ${listing.dialect} database: bak adopts GoogleSQL exports only`);
    const refused = [...(listing.changeStreams ?? []).map((c) => `change stream ${c.name}`), ...(listing.sequences ?? []).map((s) => `sequence ${s.name}`)];
    const entries: Array<{ schema: TableSchema; files: Array<{ name: string; md5: string }> }> = [];
    const views: ViewSchema[] = [];
    for (const entry of listing.tables) {
      if (!entry.manifestFile) throw new BakError(`${where}: ${entry.name} lists data files without a manifest, so they have no checksums to check`, 2);
      const manifest = await readJson(store, entry.manifestFile, tableManifestSchema, where);
      if (manifest.files.length === 0) throw new BakError(`${where}: ${entry.manifestFile} lists no files`, 2);
      const avroSchema = await schemaOfFile(store, manifest.files[0]!.name);
      const problem = unsupportedEntity(avroSchema);
      if (problem) {
        refused.push(problem);
        continue;
      }
      const view = viewFromAvro(avroSchema);
      if (view) views.push(view);
      else entries.push({ schema: tableFromAvro(avroSchema), files: manifest.files.map((f) => ({ name: f.name, md5: f.md5 })) });
    }
    if (refused.length) throw new BakError(`${where} holds what bak cannot restore: ${refused.join('; ')}`, 2);
    const byName = new Map(entries.map((e) => [e.schema.name, e]));
    for (const e of entries) if (e.schema.parent !== null && !byName.has(e.schema.parent)) throw new BakError(`${where}: table ${e.schema.name} is interleaved in ${e.schema.parent}, which the export does not have`, 2);
    const tables = parentsFirst(keepForeignKeysWithin(entries.map((e) => e.schema)).tables);
    const schema: DatabaseSchema = { dialect: 'GOOGLE_STANDARD_SQL', tables, views };

    const ddl = restoreDdl(schema);
    const ddlItem = await addDdlItem(ctx.writer, [...ddl.tables, ...ddl.afterData], 'Dataflow export');
    ctx.log.info(`adopting ${where}: ${tables.length} tables, ${views.length} views, as a snapshot of ${databasePath(ctx.source.options.ref)}`);
    ctx.progress?.expect(tables.length, 0);
    ctx.progress?.totalsKnown();
    ctx.progress?.advance(0, ddlItem.bytes);
    const done: BackedUpTable[] = [];
    for (const table of tables) {
      ctx.progress?.activity(`${location}: ${table.name}`);
      const digestColumns = table.columns.filter((c) => c.generationExpression === null).map((c) => c.name);
      const out = new TableFileWriter(ctx.writer, table, ctx.source.options.avroFileBytes, digestColumns, undefined, ctx.progress);
      try {
        for (const file of byName.get(table.name)!.files) await readDataFile(store, file, table, (row) => out.add(row));
        done.push({ name: table.name, ...(await out.finish()), ...(digestColumns.length < table.columns.length ? { digestColumns } : {}) });
        ctx.progress?.advance(1, 0);
      } catch (err) {
        await out.abandon();
        throw err;
      }
    }
    return {
      engineDetails: {
        database: databasePath(ctx.source.options.ref),
        dialect: schema.dialect,
        readTimestamp: null,
        readTimestampFrom: 'unknown: adopted from a Dataflow export, which records none',
        adoptedFrom: location,
        schemaFrom: 'Dataflow export',
        schemaGaps: [],
        schema,
        digestAlgorithm: SPANNER_DIGEST_ALGORITHM,
        tables: done,
      },
    };
  } finally {
    await store.close?.();
  }
}
