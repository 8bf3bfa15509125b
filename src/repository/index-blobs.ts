import { z } from 'zod';
import { BakError } from '../errors.ts';
import { TaskPool } from '../util/concurrency.ts';
import { describeZodError } from '../util/validation.ts';
import { blobRefSchema, type BlobRef, type BlobStore } from './blobs.ts';

/**
 * A huge item list (S3 keys, Datomic segments, files) stored as compressed NDJSON chunks, never whole in
 * memory. Chunk boundaries fall after lines chosen by their content, so an unchanged run of items yields
 * the same chunk, and the same blob, in the next snapshot.
 */
export const indexRefSchema = z
  .object({
    name: z.string().min(1),
    count: z.number().int().nonnegative(),
    bytes: z.number().int().nonnegative(),
    blobs: z.array(blobRefSchema),
  })
  .strict();
export type IndexRef = z.infer<typeof indexRefSchema>;

const MIN_CHUNK = 64 * 1024;
const MAX_CHUNK = 1024 * 1024;
// About one line in 512 ends a chunk once the minimum is reached.
const CUT_MASK = 0x1ff;

function fnv1a(line: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < line.length; i++) h = Math.imul(h ^ line.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export class IndexWriter {
  readonly name: string;
  private readonly blobStore: BlobStore;
  private readonly pool: TaskPool;
  private readonly blobs: BlobRef[] = [];
  private lines: string[] = [];
  private pendingBytes = 0;
  private count = 0;
  private bytes = 0;
  private finished = false;

  constructor(blobStore: BlobStore, name: string, concurrency = 4) {
    this.blobStore = blobStore;
    this.name = name;
    this.pool = new TaskPool(concurrency);
  }

  /** Appends one entry. Awaiting it applies back-pressure when chunk uploads fall behind. */
  async add(entry: object): Promise<void> {
    return this.addSerialized(JSON.stringify(entry));
  }

  /** `add` for an entry already in its JSON form: one carried unchanged from the previous snapshot's index. */
  async addSerialized(json: string): Promise<void> {
    if (this.finished) throw new Error(`index ${this.name} is already finished`);
    const line = `${json}\n`;
    this.lines.push(line);
    this.pendingBytes += Buffer.byteLength(line);
    this.count++;
    if (this.pendingBytes >= MAX_CHUNK || (this.pendingBytes >= MIN_CHUNK && (fnv1a(line) & CUT_MASK) === 0)) await this.cut();
  }

  private async cut(): Promise<void> {
    if (this.lines.length === 0) return;
    const data = Buffer.from(this.lines.join(''));
    this.lines = [];
    this.pendingBytes = 0;
    this.bytes += data.length;
    const slot = this.blobs.length;
    this.blobs.push({ id: '', size: data.length, stored: 0 });
    await this.pool.submit(async () => {
      this.blobs[slot] = await this.blobStore.put(data);
    });
  }

  async finish(): Promise<IndexRef> {
    await this.cut();
    await this.pool.drain();
    this.finished = true;
    return { name: this.name, count: this.count, bytes: this.bytes, blobs: this.blobs };
  }
}

/** An index entry as stored (`json`, one line without its newline) and parsed (`value`). */
export interface IndexLine {
  json: string;
  value: unknown;
}

/** Streams the entries of an index back, one chunk in memory at a time (plus one read ahead). */
export async function* readIndex(blobStore: BlobStore, ref: IndexRef): AsyncGenerator<unknown> {
  for await (const chunk of indexChunks(blobStore, ref)) for (const json of linesOf(chunk.text)) yield parseEntry(json, ref, chunk.blobId);
}

/** `readIndex` with each entry's stored JSON beside it, for an entry carried unchanged into a new index. */
export async function* readIndexLines(blobStore: BlobStore, ref: IndexRef): AsyncGenerator<IndexLine> {
  for await (const chunk of indexChunks(blobStore, ref)) for (const json of linesOf(chunk.text)) yield { json, value: parseEntry(json, ref, chunk.blobId) };
}

async function* indexChunks(blobStore: BlobStore, ref: IndexRef): AsyncGenerator<{ text: string; blobId: string }> {
  let next: Promise<Buffer> | undefined = ref.blobs[0] ? blobStore.get(ref.blobs[0]) : undefined;
  for (let i = 0; i < ref.blobs.length; i++) {
    const current = await next!;
    next = ref.blobs[i + 1] ? blobStore.get(ref.blobs[i + 1]!) : undefined;
    next?.catch(() => undefined);
    yield { text: current.toString('utf8'), blobId: ref.blobs[i]!.id };
  }
}

function* linesOf(text: string): Generator<string> {
  let start = 0;
  for (let end = text.indexOf('\n'); end >= 0; start = end + 1, end = text.indexOf('\n', start)) yield text.slice(start, end);
}

function parseEntry(json: string, ref: IndexRef, blobId: string): unknown {
  try {
    return JSON.parse(json);
  } catch {
    throw new BakError(`index ${ref.name}: unparseable entry in blob ${blobId}`);
  }
}

/** The entries of a snapshot's index `name`, streamed, each checked against `schema`; `what` names the engine in errors. */
export async function* readCheckedIndex<T>(blobStore: BlobStore, manifest: { id: string; indexes: readonly IndexRef[] }, name: string, schema: z.ZodType<T>, what: string): AsyncGenerator<T> {
  const ref = manifest.indexes.find((i) => i.name === name);
  if (!ref) throw new BakError(`snapshot ${manifest.id} has no ${name} index: not a ${what} snapshot bak can read`);
  for await (const raw of readIndex(blobStore, ref)) {
    const parsed = schema.safeParse(raw);
    if (!parsed.success) throw new BakError(`snapshot ${manifest.id}: a malformed ${name} entry (${describeZodError(parsed.error, raw).replace(/\n/g, '; ')})`);
    yield parsed.data;
  }
}
