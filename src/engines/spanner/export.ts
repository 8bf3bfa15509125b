import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import avro from 'avsc';
import { BakError, UsageError } from '../../errors.ts';
import type { Manifest } from '../../repository/manifest.ts';
import type { EngineContext } from '../engine.ts';
import { encodeAll } from '../../util/avro-container.ts';
import { AVRO_FORMAT_VERSION } from './avro.ts';
import { nativeDetails } from './native.ts';
import { snapshotContent } from './content.ts';
import type { ViewSchema } from './schema.ts';

export const EXPORT_MANIFEST = 'spanner-export.json';

function shardName(object: string, index: number, count: number): string {
  return `${object}.avro-${String(index).padStart(5, '0')}-of-${String(count).padStart(5, '0')}`;
}

/** A pass-through that keeps the base64 MD5 (what Google's manifests carry) and the length of what went through. */
export function md5Tap(): { tap: Transform; md5(): string; bytes(): number } {
  const hash = createHash('md5');
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  return { tap, md5: () => hash.digest('base64'), bytes: () => bytes };
}

/** Streams blobs into a new file (never over one), returning its MD5 and length. */
async function writeWithMd5(source: NodeJS.ReadableStream, file: string): Promise<{ md5: string; bytes: number }> {
  const sum = md5Tap();
  await pipeline(source, sum.tap, createWriteStream(file, { flags: 'wx' }));
  return { md5: sum.md5(), bytes: sum.bytes() };
}

/** A view is a schema-only Avro file, as Google's export writes it. */
async function writeViewFile(view: ViewSchema, file: string): Promise<Buffer> {
  const schema = {
    type: 'record',
    name: view.name,
    namespace: 'spannerexport',
    fields: [],
    spannerName: view.name,
    googleFormatVersion: AVRO_FORMAT_VERSION,
    googleStorage: 'CloudSpanner',
    spannerViewQuery: view.definition,
    spannerViewSecurity: view.securityType || 'INVOKER',
  };
  const content = await encodeAll(new avro.streams.BlockEncoder(schema as avro.Schema, { writeHeader: true } as never));
  await writeFile(file, content, { flag: 'wx' });
  return content;
}

/**
 * `bak export` of a Spanner snapshot: the folder Google's "Cloud Spanner to Avro" Dataflow template writes, which its
 * "Avro to Cloud Spanner" import template (or any Avro reader) takes without bak: spanner-export.json, per table
 * `<T>-manifest.json` with each file's base64 MD5, and `<T>.avro-NNNNN-of-NNNNN`.
 */
export async function exportDataflowLayout(ctx: EngineContext, manifest: Manifest, directory: string): Promise<{ files: number; bytes: number }> {
  if (nativeDetails(manifest)) throw new UsageError(`snapshot ${manifest.id} is a Spanner managed backup: its data lives in Spanner, restore it with bak restore instead`);
  const content = snapshotContent(manifest);
  const items = new Map(manifest.items.map((i) => [i.name, i]));
  const listed: Array<{ name: string; manifestFile: string }> = [];
  let files = 0;
  let bytes = 0;
  for (const table of content.tables) {
    ctx.progress?.activity(`export: ${table.name}`);
    const entries: Array<{ name: string; md5: string }> = [];
    for (const [i, itemName] of table.files.entries()) {
      const item = items.get(itemName);
      if (!item) throw new BakError(`snapshot ${manifest.id} lists ${itemName} for table ${table.name}, but has no such item`);
      const name = shardName(table.name, i, table.files.length);
      const written = await writeWithMd5(ctx.repo.blobs.readStream(item.blobs), path.join(directory, name));
      entries.push({ name, md5: written.md5 });
      ctx.progress?.advance(1, 0);
      files++;
      bytes += written.bytes;
    }
    const manifestFile = `${table.name}-manifest.json`;
    await writeFile(path.join(directory, manifestFile), `${JSON.stringify({ files: entries }, null, 2)}\n`, { flag: 'wx' });
    listed.push({ name: table.name, manifestFile });
  }
  for (const view of content.schema.views) {
    const name = shardName(view.name, 0, 1);
    const written = await writeViewFile(view, path.join(directory, name));
    const manifestFile = `${view.name}-manifest.json`;
    await writeFile(path.join(directory, manifestFile), `${JSON.stringify({ files: [{ name, md5: createHash('md5').update(written).digest('base64') }] }, null, 2)}\n`, { flag: 'wx' });
    listed.push({ name: view.name, manifestFile });
    files++;
    bytes += written.length;
  }
  // GoogleSQL is the proto enum's default, which Google's export leaves out; so does bak.
  await writeFile(path.join(directory, EXPORT_MANIFEST), `${JSON.stringify({ tables: listed }, null, 2)}\n`, { flag: 'wx' });
  return { files: files + listed.length + 1, bytes };
}
