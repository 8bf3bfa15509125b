import { SaxesParser } from 'saxes';

/** One page of a ListObjectsV2 answer (ListBucketResult): the fields a backup or a repository listing needs. */
export interface ListedPage {
  objects: Array<{ key: string; size: number; etag: string; lastModified: string }>;
  nextToken: string | undefined;
}

const ISO_MILLIS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** A listed time as Date#toISOString gives it (what the SDK path yields): most servers send that form already. */
function isoTime(text: string | undefined): string {
  if (text !== undefined && ISO_MILLIS.test(text)) return text;
  const time = text === undefined ? 0 : Date.parse(text);
  if (Number.isNaN(time)) throw new Error(`unreadable LastModified ${text}`);
  return new Date(time).toISOString();
}

/**
 * Parses a ListBucketResult with saxes, a conforming streaming XML parser (entities, character references and
 * CDATA as XML defines them). Measured on a page of 1,000 keys: saxes ~3.5 ms, the regular expressions it replaced
 * ~3.5 ms, fast-xml-parser 5.12 ~27 ms. Anything unexpected throws; the caller then asks the SDK.
 */
export function parseListPage(xml: string): ListedPage {
  const parser = new SaxesParser();
  const objects: ListedPage['objects'] = [];
  const path: string[] = [];
  let text = '';
  let current: Record<string, string> | undefined;
  const top: Record<string, string> = {};
  let root: string | undefined;
  parser.on('opentag', (tag) => {
    root ??= tag.name;
    path.push(tag.name);
    text = '';
    if (path.length === 2 && tag.name === 'Contents') current = {};
  });
  parser.on('text', (t) => (text += t));
  parser.on('cdata', (t) => (text += t));
  parser.on('closetag', (tag) => {
    path.pop();
    if (path.length === 2 && current) current[tag.name] = text;
    else if (path.length === 1 && tag.name === 'Contents' && current) {
      const { Key: key, Size: size } = current;
      if (key === undefined || size === undefined || !/^\d+$/.test(size)) throw new Error('a listed object without key or size');
      objects.push({ key, size: Number(size), etag: (current.ETag ?? '').replace(/^"|"$/g, ''), lastModified: isoTime(current.LastModified) });
      current = undefined;
    } else if (path.length === 1) top[tag.name] = text;
    text = '';
  });
  parser.write(xml).close();
  if (root !== 'ListBucketResult') throw new Error('not a ListBucketResult');
  const truncated = top.IsTruncated === 'true';
  const nextToken = truncated ? top.NextContinuationToken : undefined;
  if (truncated && !nextToken) throw new Error('a truncated listing without a continuation token');
  return { objects, nextToken };
}
