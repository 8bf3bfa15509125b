import { randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { compareKeys } from '../../src/util/key-order.ts';
import { parseListPage } from '../../src/storage/s3-list-page.ts';

describe('S3 key order', () => {
  it('is UTF-8 byte order, for ASCII, BMP characters above the surrogates and characters beyond U+FFFF', () => {
    const alphabet = ['a', 'b', '/', ' ', 'é', '\u00ff', '\u4e2d', '\ud7ff', '\ue000', '\uffee', '\u{1f600}', '\u{10000}', '\u{1f4a9}'];
    const sign = (n: number) => Math.sign(n);
    for (let i = 0; i < 5000; i++) {
      const key = () => Array.from({ length: randomInt(0, 5) }, () => alphabet[randomInt(0, alphabet.length)]).join('');
      const [a, b] = [key(), key()];
      expect(sign(compareKeys(a, b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).toBe(sign(Buffer.compare(Buffer.from(a), Buffer.from(b))));
    }
    // The case UTF-16 order gets wrong: U+FFEE sorts before U+1F600 in UTF-8.
    expect(compareKeys('\uffee', '\u{1f600}')).toBeLessThan(0);
  });
});

describe('ListObjectsV2 answers', () => {
  const page = (contents: string, tail: string) =>
    `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix>${tail}<KeyCount>2</KeyCount>${contents}</ListBucketResult>`;

  it('reads keys (entities and CDATA as XML defines them), sizes, ETags, times and the continuation token wherever it stands', () => {
    const contents =
      '<Contents><Key>p/a &amp; b &lt;IsTruncated&gt; caf&#xe9; &#128512;</Key><LastModified>2026-12-01T10:09:07.123Z</LastModified><ETag>&quot;abc&quot;</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass></Contents>' +
      '<Contents><Key>p/empty/</Key><LastModified>2026-12-01T10:09:08Z</LastModified><ETag>"d41d"</ETag><Size>0</Size></Contents>';
    expect(parseListPage(page(contents, '<NextContinuationToken>tok+/=</NextContinuationToken><IsTruncated>true</IsTruncated>'))).toEqual({
      objects: [
        { key: 'p/a & b <IsTruncated> café 😀', size: 12, etag: 'abc', lastModified: '2026-12-01T10:09:07.123Z' },
        { key: 'p/empty/', size: 0, etag: 'd41d', lastModified: '2026-12-01T10:09:08.000Z' },
      ],
      nextToken: 'tok+/=',
    });
    expect(parseListPage(page(contents, '<IsTruncated>false</IsTruncated>')).nextToken).toBeUndefined();
    expect(parseListPage(page('', '<IsTruncated>false</IsTruncated>')).objects).toEqual([]);
  });

  it('throws on what it does not understand, so the SDK is asked instead', () => {
    expect(() => parseListPage('<Error><Code>AccessDenied</Code></Error>')).toThrow(/not a ListBucketResult/);
    expect(() => parseListPage(page('<Contents><Key>k</Key></Contents>', ''))).toThrow(/without key or size/);
    expect(() => parseListPage(page('', '<IsTruncated>true</IsTruncated>'))).toThrow(/without a continuation token/);
    expect(() => parseListPage('<ListBucketResult><Contents><Key>k</Key>')).toThrow();
    expect(() => parseListPage('<ListBucketResult><Key>&bogus;</Key></ListBucketResult>')).toThrow();
  });
});
