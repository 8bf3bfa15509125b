// The BigQuery engine's logic that no emulator exercises: partition-level change detection (the emulator has no
// INFORMATION_SCHEMA.PARTITIONS and never moves lastModifiedTime), partition filters, value conversions at their edges,
// and the shared helpers it brought (sorted cursor, ordered map, retention horizon).
import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { planUnits, wantedUnits } from '../../src/engines/bigquery/backup.ts';
import type { TableResource } from '../../src/engines/bigquery/catalog.ts';
import { snapshotExpiration } from '../../src/engines/bigquery/copy.ts';
import type { TableEntry } from '../../src/engines/bigquery/entries.ts';
import { partitionBounds, partitionFilter, partitionIdOf, type PartitionInfo } from '../../src/engines/bigquery/partitions.ts';
import { TableCheck } from '../../src/engines/bigquery/rows.ts';
import { tableInsertResource } from '../../src/engines/bigquery/restore.ts';
import { selected } from '../../src/engines/bigquery/source.ts';
import { avroSchemaOf, bytesToDecimal, canonicalRow, decimalToBytes, formatTime, restRowToAvro, rowBytes, timeMicros, timestampMicros } from '../../src/engines/bigquery/values.ts';
import { retentionHorizonDays } from '../../src/repository/retention.ts';
import { BIGINT_LONG, physicalSchema } from '../../src/util/avro-container.ts';
import { mapOrdered } from '../../src/util/concurrency.ts';
import { SortedCursor } from '../../src/util/sorted-cursor.ts';

const partitioned: TableResource = {
  schema: { fields: [{ name: 'day', type: 'DATE' }, { name: 'n', type: 'INTEGER' }] },
  timePartitioning: { type: 'DAY', field: 'day' },
  lastModifiedTime: '1000',
  numRows: '4',
  numBytes: '400',
};
const parts = (modified: Record<string, string>): PartitionInfo[] => Object.entries(modified).map(([partition, m]) => ({ table: 't', partition, rows: 1, bytes: 100, modified: m }));

function parentEntry(resource: TableResource, units: Array<{ partition: string | null; modified: string; stale?: boolean }>, extra: Partial<TableEntry> = {}): TableEntry {
  return {
    key: 'd.t', dataset: 'd', table: 't', kind: 'TABLE', resource, change: '', changeBy: 'partitions', streamingRows: 0,
    units: units.map((u) => ({ ...u, rows: 1, bytes: 100, snapshot: 'parent', readAt: null, backupTable: `p.b.${u.partition}` })),
    ...extra,
  };
}

describe('bigquery change detection', () => {
  it('takes only the partitions whose data changed; a description change alone takes nothing', () => {
    const parent = parentEntry(partitioned, [{ partition: '20260101', modified: '10' }, { partition: '20260102', modified: '10' }]);
    // The description changed and lastModifiedTime moved with it, but no partition's data did.
    const described = { ...partitioned, description: 'new', lastModifiedTime: '2000' };
    const same = planUnits(wantedUnits(described, parts({ '20260101': '10', '20260102': '10' }), 'copy'), described, parent, 'copy');
    expect(same.every((p) => p.carried)).toBe(true);
    const one = planUnits(wantedUnits(described, parts({ '20260101': '10', '20260102': '11', '20260103': '11' }), 'copy'), described, parent, 'copy');
    expect(one.map((p) => [p.want.partition, Boolean(p.carried)])).toEqual([['20260101', true], ['20260102', false], ['20260103', false]]);
  });

  it('without partition metadata, tells change by lastModifiedTime, rows and bytes of the whole table', () => {
    const wanted = wantedUnits(partitioned, null, 'extract');
    expect(wanted).toEqual({ changeBy: 'table', units: [{ partition: null, modified: '1000/4/400', rows: 4, bytes: 400 }] });
    const parent = parentEntry(partitioned, [{ partition: null, modified: '1000/4/400' }], { changeBy: 'table' });
    expect(planUnits(wanted, partitioned, parent, 'extract')[0]!.carried).toBeDefined();
    const grown = { ...partitioned, numRows: '5' };
    expect(planUnits(wantedUnits(grown, null, 'extract'), grown, parent, 'extract')[0]!.carried).toBeUndefined();
  });

  it('carries nothing across a schema change, a stale (deferred) unit, or streaming-buffer rows a copy missed', () => {
    const parent = parentEntry(partitioned, [{ partition: '20260101', modified: '10' }, { partition: '20260102', modified: '10', stale: true }]);
    const wanted = wantedUnits(partitioned, parts({ '20260101': '10', '20260102': '10' }), 'copy');
    expect(planUnits(wanted, partitioned, parent, 'copy').map((p) => Boolean(p.carried))).toEqual([true, false]);
    const widened = { ...partitioned, schema: { fields: [...partitioned.schema!.fields!, { name: 'x', type: 'STRING' }] } };
    expect(planUnits(wanted, widened, parent, 'copy').some((p) => p.carried)).toBe(false);
    const buffered = { ...parent, streamingRows: 3 };
    expect(planUnits(wanted, partitioned, buffered, 'copy').some((p) => p.carried)).toBe(false);
    // The Storage Read API reads the streaming buffer, so extract mode carries as usual.
    expect(planUnits(wanted, partitioned, { ...buffered, units: [buffered.units[0]!] }, 'extract')[0]!.carried).toBeDefined();
  });

  it('snapshot mode keys a whole table by its newest partition change', () => {
    const wanted = wantedUnits(partitioned, parts({ '20260101': '10', '20260102': '12' }), 'snapshot');
    expect(wanted.units).toEqual([{ partition: null, modified: '12/2', rows: 2, bytes: 200 }]);
  });
});

describe('bigquery partition filters', () => {
  it('selects a day, an hour, a month and a year of a time-partitioned column, and the special partitions', () => {
    expect(partitionFilter(partitioned, '20260131')).toBe("`day` >= DATE '2026-01-31' AND `day` < DATE '2026-02-01'");
    const ts = { ...partitioned, schema: { fields: [{ name: 'at', type: 'TIMESTAMP' }] }, timePartitioning: { type: 'HOUR', field: 'at' } };
    expect(partitionFilter(ts, '2026123123')).toBe("`at` >= TIMESTAMP '2026-12-31 23:00:00Z' AND `at` < TIMESTAMP '2027-01-01 00:00:00Z'");
    expect(partitionBounds('202602')).toEqual({ start: '2026-02-01T00:00:00Z', end: '2026-03-01T00:00:00Z' });
    expect(partitionBounds('2024')).toEqual({ start: '2024-01-01T00:00:00Z', end: '2025-01-01T00:00:00Z' });
    expect(partitionFilter(partitioned, '__NULL__')).toBe('`day` IS NULL');
    expect(partitionFilter(partitioned, '__UNPARTITIONED__')).toBe("(`day` < DATE '1960-01-01' OR `day` >= DATE '2160-01-01')");
    const ingestion = { ...partitioned, timePartitioning: { type: 'DAY' } };
    expect(partitionFilter(ingestion, '20260101')).toBe("_PARTITIONTIME >= TIMESTAMP '2026-01-01 00:00:00Z' AND _PARTITIONTIME < TIMESTAMP '2026-01-02 00:00:00Z'");
    expect(partitionFilter(ingestion, '__UNPARTITIONED__')).toBe('_PARTITIONTIME IS NULL');
  });

  it('selects a range partition by its start', () => {
    const ranged = { schema: { fields: [{ name: 'k', type: 'INTEGER' }] }, rangePartitioning: { field: 'k', range: { start: '0', end: '100', interval: '10' } } };
    expect(partitionFilter(ranged, '30')).toBe('`k` >= 30 AND `k` < 40');
    expect(partitionFilter(ranged, '__UNPARTITIONED__')).toBe('(`k` < 0 OR `k` >= 100)');
    expect(() => partitionFilter({ schema: { fields: [] } }, '20260101')).toThrow(/no partitioning/);
  });
});

describe('bigquery restore check per partition', () => {
  it('puts a row in its partition by its partitioning column, as INFORMATION_SCHEMA.PARTITIONS names them', () => {
    expect(partitionIdOf(partitioned, { day: 20455 })).toBe('20260102');
    expect(partitionIdOf(partitioned, { day: null })).toBe('__NULL__');
    expect(partitionIdOf(partitioned, { day: -4000 })).toBe('__UNPARTITIONED__');
    const hourly = { timePartitioning: { type: 'HOUR', field: 'at' } };
    expect(partitionIdOf(hourly, { at: '1767323045123456' })).toBe('2026010203');
    expect(partitionIdOf(hourly, { at: '-1' })).toBe('1969123123');
    expect(partitionIdOf(hourly, { at: '-631152000000000' })).toBe('__UNPARTITIONED__'); // 1950: before the partitionable 1960-2159
    expect(partitionIdOf({ timePartitioning: { type: 'MONTH', field: 'dt' } }, { dt: '2026-11-30T23:59:59.5' })).toBe('202611');
    expect(partitionIdOf({ timePartitioning: { type: 'YEAR', field: 'dt' } }, { dt: '2026-11-30T23:59:59' })).toBe('2026');
    const ranged = { rangePartitioning: { field: 'k', range: { start: '0', end: '100', interval: '10' } } };
    expect(partitionIdOf(ranged, { k: '37' })).toBe('30');
    expect(partitionIdOf(ranged, { k: '100' })).toBe('__UNPARTITIONED__');
    expect(partitionIdOf(ranged, { k: null })).toBe('__NULL__');
    // Ingestion time: _PARTITIONTIME is no column, so the table is checked whole.
    expect(partitionIdOf({ timePartitioning: { type: 'DAY' } }, { x: 1 })).toBe('');
  });

  it('names the partition whose rows differ', () => {
    const of = (row: Record<string, unknown>) => partitionIdOf(partitioned, row);
    const expected = new TableCheck(of);
    const actual = new TableCheck(of);
    for (const row of [{ day: 20455, n: '1' }, { day: 20455, n: '2' }, { day: 20456, n: '3' }]) expected.add(row);
    for (const row of [{ day: 20455, n: '2' }, { day: 20455, n: '1' }, { day: 20456, n: '3' }]) actual.add(row);
    expect(actual.differences(expected)).toEqual([]);
    const changed = new TableCheck(of);
    for (const row of [{ day: 20455, n: '1' }, { day: 20455, n: '2' }, { day: 20456, n: '4' }]) changed.add(row);
    expect(changed.differences(expected)).toEqual([{ partition: '20260103', expectedRows: 1, actualRows: 1, digestMatches: false }]);
    const short = new TableCheck(of);
    short.add({ day: 20455, n: '1' });
    expect(short.differences(expected).map((d) => [d.partition, d.expectedRows, d.actualRows])).toEqual([['20260102', 2, 1], ['20260103', 1, 0]]);
  });
});

describe('bigquery values', () => {
  it('turns decimals into Avro decimal bytes and back, exactly, at the edges of NUMERIC and BIGNUMERIC', () => {
    for (const [s, scale, back] of [
      ['0', 9, '0'], ['1.5', 9, '1.5'], ['-1.5', 9, '-1.5'], ['99999999999999999999999999999.999999999', 9, '99999999999999999999999999999.999999999'],
      ['-99999999999999999999999999999.999999999', 9, '-99999999999999999999999999999.999999999'], ['1e3', 9, '1000'], ['-0.000000001', 9, '-0.000000001'],
      ['-12345678901234567890123456789.1234567890123456789', 38, '-12345678901234567890123456789.1234567890123456789'], ['-1e-38', 38, '-0.00000000000000000000000000000000000001'],
      ['128', 0, '128'], ['-128', 0, '-128'], ['-129', 0, '-129'], ['255', 0, '255'],
    ] as const) {
      expect(bytesToDecimal(decimalToBytes(s, scale), scale), s).toBe(back);
    }
    // Two's complement, big-endian, minimal: what BigQuery's own Avro holds (the emulator sent 59682f00 for 1.5).
    expect(decimalToBytes('1.5', 9).toString('hex')).toBe('59682f00');
    expect(decimalToBytes('-1', 0).toString('hex')).toBe('ff');
    expect(decimalToBytes('128', 0).toString('hex')).toBe('0080');
  });

  it('reads every TIMESTAMP form the REST API sends, and TIME to micros and back', () => {
    expect(timestampMicros('1767323045123456')).toBe(1767323045123456n);
    expect(timestampMicros('1767323045.123456')).toBe(1767323045123456n);
    expect(timestampMicros('-1.5')).toBe(-1500000n);
    expect(timestampMicros('1.767323045123456E9')).toBe(1767323045123456n);
    expect(timestampMicros('2020-01-01 00:00:00+00')).toBe(1577836800000000n);
    expect(timestampMicros('2020-01-01 00:00:00.000001 UTC')).toBe(1577836800000001n);
    expect(() => timestampMicros('soon')).toThrow(/not a TIMESTAMP/);
    expect(timeMicros('23:59:59.999999')).toBe(86399999999n);
    expect(formatTime(86399999999n)).toBe('23:59:59.999999');
    expect(formatTime(timeMicros('12:34:56.5'))).toBe('12:34:56.5');
    expect(formatTime(0n)).toBe('00:00:00');
  });

  it('carries a REST row through Avro to the canonical row, nested and repeated, NULLs included, and hashes -0 apart from 0', () => {
    const fields = [
      { name: 'id', type: 'INTEGER', mode: 'REQUIRED' },
      { name: 'f', type: 'FLOAT' },
      { name: 'n', type: 'NUMERIC' },
      { name: 'ts', type: 'TIMESTAMP' },
      { name: 'd', type: 'DATE' },
      { name: 't', type: 'TIME' },
      { name: 'bt', type: 'BYTES' },
      { name: 'rec', type: 'RECORD', fields: [{ name: 'x', type: 'INTEGER' }, { name: 'y', type: 'TIMESTAMP' }] },
      { name: 'rr', type: 'RECORD', mode: 'REPEATED', fields: [{ name: 'k', type: 'STRING' }] },
    ];
    const row = { f: [{ v: '9223372036854775807' }, { v: '-0' }, { v: '-1.25' }, { v: '1767323045123456' }, { v: '2026-01-02' }, { v: '01:02:03.5' }, { v: 'AAH/' }, { v: { f: [{ v: '1' }, { v: null }] } }, { v: [{ v: { f: [{ v: 'a' }] } }] }] };
    const schema = avroSchemaOf(fields);
    const type = avro.Type.forSchema(physicalSchema(schema) as avro.Schema, { registry: { long: BIGINT_LONG } });
    const decoded = type.fromBuffer(type.toBuffer(restRowToAvro(fields, row))) as Record<string, unknown>;
    const canonical = canonicalRow(fields, decoded);
    expect(canonical).toEqual({ id: '9223372036854775807', f: -0, n: '-1.25', ts: '1767323045123456', d: 20455, t: '01:02:03.5', bt: Buffer.from([0, 1, 255]), rec: { x: '1', y: null }, rr: [{ k: 'a' }] });
    const nulls = canonicalRow(fields, type.fromBuffer(type.toBuffer(restRowToAvro(fields, { f: [{ v: '1' }, ...fields.slice(1, -1).map(() => ({ v: null })), { v: [] }] }))) as Record<string, unknown>);
    expect(nulls).toEqual({ id: '1', f: null, n: null, ts: null, d: null, t: null, bt: null, rec: null, rr: [] });
    expect(rowBytes({ f: -0 }).equals(rowBytes({ f: 0 }))).toBe(false);
    expect(rowBytes({ f: Number.NaN }).toString()).toBe('{"f":"NaN"}');
    // The schema keeps BigQuery's logical types for any Avro reader.
    expect(JSON.stringify(schema)).toContain('"logicalType":"timestamp-micros"');
    expect(JSON.stringify(schema)).toContain('"logicalType":"decimal","precision":38,"scale":9');
  });

  it('refuses column types it cannot back up, by name', () => {
    expect(() => avroSchemaOf([{ name: 'r', type: 'RANGE' }])).toThrow(/column r: BigQuery type RANGE/);
  });
});

describe('bigquery restore resources and options', () => {
  it('creates a table with its recorded settings, dropping an expiration already past', () => {
    const entry = { resource: { schema: { fields: [] }, labels: { a: 'b' }, expirationTime: '1000', numRows: '5', etag: 'x', clustering: { fields: ['a'] } } } as unknown as TableEntry;
    const target = { projectId: 'p', datasetId: 'd', tableId: 't' };
    expect(tableInsertResource(entry, target, 2000)).toEqual({ tableReference: target, schema: { fields: [] }, labels: { a: 'b' }, clustering: { fields: ['a'] } });
    expect(tableInsertResource(entry, target, 500).expirationTime).toBe('1000');
  });

  it('selects by glob over the table, or dataset.table when the glob has a dot', () => {
    expect(selected('events', ['ev*'], undefined, 'd.events')).toBe(true);
    expect(selected('events', ['d.*'], ['*.events'], 'd.events')).toBe(false);
    expect(selected('events', undefined, undefined, 'd.events')).toBe(true);
  });

  it('expires table snapshots after the retention horizon', () => {
    expect(retentionHorizonDays({ keepDaily: 7 })).toBe(8);
    expect(retentionHorizonDays({ keepDaily: 7, keepMonthly: 12 })).toBe(12 * 31 + 31);
    expect(retentionHorizonDays({ keepWithin: '36h' })).toBe(2);
    expect(retentionHorizonDays({ keepLast: 3 })).toBeUndefined();
    expect(snapshotExpiration({ retentionDays: 8 }, 0)).toBe(new Date(8 * 86_400_000).toISOString());
    expect(snapshotExpiration({ expireAfterDays: 2, retentionDays: 8 }, 0)).toBe(new Date(2 * 86_400_000).toISOString());
    expect(snapshotExpiration({}, 0)).toBeUndefined();
  });
});

describe('shared helpers the engine brought', () => {
  it('SortedCursor joins a sorted stream with lookups in the same order, overlapping calls included', async () => {
    async function* items() {
      for (const k of ['a', 'b', 'b', 'd', 'f']) yield { k };
    }
    const cursor = new SortedCursor(items(), (item: { k: string }, key: string) => (item.k < key ? -1 : item.k > key ? 1 : 0));
    const [a, b, c, d, e, g] = await Promise.all(['a', 'b', 'c', 'd', 'e', 'g'].map((k) => cursor.take(k)));
    expect([a, b, c, d, e, g].map((x) => x!.length)).toEqual([1, 2, 0, 1, 0, 0]);
  });

  it('mapOrdered keeps input order with bounded calls in flight, and stops at the first error', async () => {
    let inFlight = 0;
    let most = 0;
    const out: number[] = [];
    for await (const v of mapOrdered([5, 1, 4, 2, 3], 2, async (n) => {
      most = Math.max(most, ++inFlight);
      await new Promise((r) => setTimeout(r, n * 3));
      inFlight--;
      return n * 10;
    })) out.push(v);
    expect(out).toEqual([50, 10, 40, 20, 30]);
    expect(most).toBeLessThanOrEqual(2);
    const failing = mapOrdered([1, 2, 3], 2, async (n) => {
      if (n === 2) throw new Error('boom');
      return n;
    });
    await expect((async () => { for await (const _ of failing); })()).rejects.toThrow('boom');
  });
});
