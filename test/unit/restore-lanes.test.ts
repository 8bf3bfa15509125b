import { describe, expect, it } from 'vitest';
import { dataSection, effectiveSections, needsLanes, planLanes, useListText } from '../../src/engines/postgres/restore-lanes.ts';
import type { Toc, TocEntry, TocSection } from '../../src/engines/postgres/toc.ts';

function entry(dumpId: number, section: TocSection, desc: string, dataFile: string | null = null): TocEntry {
  return {
    dumpId, hadDumper: dataFile !== null, tableOid: 0, oid: 0, tag: `t${dumpId}`, desc, section, defn: null, dropStmt: null,
    copyStmt: null, namespace: 'public', tablespace: null, tableam: null, relkind: null, owner: null, dependencies: [], dataFile,
  };
}

function toc(entries: TocEntry[]): Toc {
  return { header: {} as Toc['header'], encoding: 'UTF8', entries };
}

// A dump's shape: schema, then data (with a comment of section "none" among it), then indexes.
const dump = toc([
  entry(1, 'pre-data', 'TABLE'),
  entry(2, 'none', 'COMMENT'),
  entry(10, 'data', 'TABLE DATA', '10.dat'),
  entry(11, 'data', 'TABLE DATA', '11.dat'),
  entry(12, 'none', 'COMMENT'),
  entry(13, 'data', 'TABLE DATA', '13.dat'),
  entry(14, 'data', 'SEQUENCE SET'),
  entry(15, 'data', 'TABLE DATA', '15.dat'),
  entry(20, 'post-data', 'INDEX'),
  entry(21, 'none', 'ACL'),
]);
const sizes: Record<string, number> = { '10.dat': 100, '11.dat': 700, '13.dat': 300, '15.dat': 350 };
const bytesOf = (e: TocEntry) => (e.dataFile ? sizes[e.dataFile]! : 0);

describe('restore lanes', () => {
  it('give an entry of section "none" the section of the entry before it, as pg_restore --section does', () => {
    expect(effectiveSections(dump).map((e) => `${e.entry.dumpId}:${e.section}`)).toEqual([
      '1:pre-data', '2:pre-data', '10:data', '11:data', '12:data', '13:data', '14:data', '15:data', '20:post-data', '21:post-data',
    ]);
  });

  it('are needed only in parallel, with more data files than jobs', () => {
    expect(needsLanes(dataSection(dump), 1)).toBe(false);
    expect(needsLanes(dataSection(dump), 3)).toBe(true);
    expect(needsLanes(dataSection(dump), 4)).toBe(false); // 4 data files: every one starts at once
  });

  it('take every data item once, biggest first, each to the lane with the fewest bytes', () => {
    const lanes = planLanes(dataSection(dump), 2, bytesOf);
    // 700 → lane 0; 350, 300 and 100 → lane 1 (each time the lighter); the weightless comment and sequence → lane 0.
    expect(lanes).toEqual([[11, 12, 14], [15, 13, 10]]);
    expect(lanes.flat().sort((a, b) => a - b)).toEqual([10, 11, 12, 13, 14, 15]);
    const weight = lanes.map((ids) => ids.reduce((sum, id) => sum + bytesOf(dump.entries.find((e) => e.dumpId === id)!), 0));
    expect(weight).toEqual([700, 750]);
  });

  it('never make empty lanes', () => {
    expect(planLanes(dataSection(toc([entry(1, 'pre-data', 'TABLE'), entry(10, 'data', 'TABLE DATA', '10.dat')])), 4, () => 5)).toEqual([[10]]);
    expect(planLanes(dataSection(toc([entry(1, 'pre-data', 'TABLE')])), 4, () => 5)).toEqual([]);
  });

  it('write a --use-list file pg_restore reads by dump id', () => {
    expect(useListText([11, 10])).toBe('11;\n10;\n');
  });
});
