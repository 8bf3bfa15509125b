import { describe, expect, it } from 'vitest';
import { applyPolicy, durationMs, isoWeek, subtractDuration, type PolicySnapshot, type RetentionPolicy } from '../../src/repository/retention.ts';

/** Snapshots named by their start time; `status` and `pinned` default to a plain complete snapshot. */
function history(times: string[], extra: Record<string, Partial<PolicySnapshot>> = {}): PolicySnapshot[] {
  return times.map((t) => ({ id: t, startedAt: new Date(t).toISOString(), status: 'complete', pinned: false, ...extra[t] }));
}

function kept(snapshots: PolicySnapshot[], policy: RetentionPolicy, now = '2026-12-31T23:00:00Z'): string[] {
  return applyPolicy(snapshots, policy, new Date(now))
    .filter((d) => d.keep)
    .map((d) => d.id)
    .sort();
}

/** One snapshot every `hours` hours from `start`, `count` of them. */
function every(hours: number, count: number, start = '2026-01-01T00:30:00Z'): string[] {
  return Array.from({ length: count }, (_, i) => new Date(Date.parse(start) + i * hours * 3_600_000).toISOString());
}

describe('retention policy', () => {
  const daily = every(24, 60); // 2026-01-01 … 2026-03-01, 00:30 UTC

  it.each<[string, RetentionPolicy, (string[] | number)]>([
    ['keepLast keeps the newest N', { keepLast: 3 }, daily.slice(-3)],
    ['keepDaily keeps one per day for the newest N days', { keepDaily: 5 }, daily.slice(-5)],
    ['keepWeekly keeps the newest in each of N ISO weeks', { keepWeekly: 3 }, ['2026-02-15T00:30:00.000Z', '2026-02-22T00:30:00.000Z', '2026-03-01T00:30:00.000Z']],
    ['keepMonthly keeps the newest of each month', { keepMonthly: 12 }, ['2026-01-31T00:30:00.000Z', '2026-02-28T00:30:00.000Z', '2026-03-01T00:30:00.000Z']],
    ['keepYearly keeps the newest of each year', { keepYearly: 5 }, ['2026-03-01T00:30:00.000Z']],
    ['keepWithin counts from the newest snapshot, not from now', { keepWithin: '3d' }, daily.slice(-4)],
    ['maxAgeDays counts from now', { maxAgeDays: 2 }, []],
    ['rules combine: kept if any rule keeps', { keepLast: 3, keepMonthly: 3 }, ['2026-01-31T00:30:00.000Z', ...daily.slice(-3)]],
  ])('%s', (_name, policy, expected) => {
    expect(kept(history(daily), policy, '2026-03-05T00:00:00Z')).toEqual(expected);
  });

  it('keepHourly buckets by hour', () => {
    const times = every(0.25, 12, '2026-05-01T10:00:00Z'); // 10:00 … 12:45, every 15 minutes
    expect(kept(history(times), { keepHourly: 2 })).toEqual(['2026-05-01T11:45:00.000Z', '2026-05-01T12:45:00.000Z']);
  });

  it('maxAgeDays keeps what is younger than N days', () => {
    expect(kept(history(daily), { maxAgeDays: 3 }, '2026-03-02T00:00:00Z')).toEqual(daily.slice(-3));
    expect(kept(history(daily), { maxAgeDays: 3 }, '2026-03-02T12:00:00Z')).toEqual(daily.slice(-2));
  });

  it('a nightly job keeping 7 daily, 4 weekly, 12 monthly and never fewer than 3', () => {
    const nightly = every(24, 400, '2025-11-01T02:00:00Z');
    const result = applyPolicy(history(nightly), { keepDaily: 7, keepWeekly: 4, keepMonthly: 12, minKeep: 3 }, new Date('2026-12-06T03:00:00Z'));
    const keptIds = result.filter((d) => d.keep);
    // Newest is Saturday 2026-12-05. 7 dailies (11-29 … 12-05); the 4 weeklies add Sundays 11-22 and 11-15
    // (W49 and W48 are dailies already); the 12 monthlies add the month-ends of Oct 2026 back to Jan 2026.
    expect(keptIds.length).toBe(7 + 2 + 10);
    const newest = result[0]!;
    expect(newest.reasons).toEqual(['daily 2026-12-05', 'weekly 2026-W49', 'monthly 2026-12']);
    expect(result.find((d) => d.id === '2026-01-31T02:00:00.000Z')!.reasons).toEqual(['monthly 2026-01']);
    expect(result.find((d) => d.id === '2025-12-31T02:00:00.000Z')!.keep).toBe(false);
    // Backups stop: three months later the same snapshots are kept, nothing ages out.
    const later = applyPolicy(history(nightly), { keepDaily: 7, keepWeekly: 4, keepMonthly: 12, minKeep: 3 }, new Date('2027-03-06T03:00:00Z'));
    expect(later.filter((d) => d.keep).map((d) => d.id)).toEqual(keptIds.map((d) => d.id));
  });

  describe('time zones and week boundaries', () => {
    // 23:30 UTC on Sunday 2026-03-01 is already Monday 2026-03-02 in Berlin (UTC+1).
    const times = ['2026-03-01T22:30:00Z', '2026-03-01T23:30:00Z'];

    it('UTC by default: both are on Sunday, one daily bucket', () => {
      expect(kept(history(times), { keepDaily: 5 })).toEqual(['2026-03-01T23:30:00Z']);
    });

    it('in Europe/Berlin they fall on two days and in two ISO weeks', () => {
      expect(kept(history(times), { keepDaily: 5, timeZone: 'Europe/Berlin' })).toEqual(times);
      expect(kept(history(times), { keepWeekly: 5, timeZone: 'Europe/Berlin' })).toEqual(times);
      expect(kept(history(times), { keepWeekly: 5 })).toEqual(['2026-03-01T23:30:00Z']);
    });

    it('in America/Los_Angeles a UTC new year is still the old year', () => {
      const nye = ['2025-12-31T12:00:00Z', '2026-01-01T05:00:00Z'];
      expect(kept(history(nye), { keepYearly: 5 })).toEqual(nye);
      expect(kept(history(nye), { keepYearly: 5, timeZone: 'America/Los_Angeles' })).toEqual(['2026-01-01T05:00:00Z']);
    });

    it('ISO weeks: years whose week 1 starts in December, and week 53', () => {
      expect(isoWeek(2024, 12, 30)).toBe('2025-W01');
      expect(isoWeek(2026, 12, 31)).toBe('2026-W53');
      expect(isoWeek(2027, 1, 3)).toBe('2026-W53');
      expect(isoWeek(2027, 1, 4)).toBe('2027-W01');
    });

    it('rejects unknown time zones', () => {
      expect(() => kept(history(times), { keepDaily: 1, timeZone: 'Mars/Olympus' })).toThrow(/unknown time zone/);
    });
  });

  it('maxAgeDays with minKeep: a month without backups leaves the newest minKeep, never zero', () => {
    expect(kept(history(daily), { maxAgeDays: 30, minKeep: 3 }, '2026-05-01T00:00:00Z')).toEqual(daily.slice(-3));
  });

  describe('minKeep is a floor over everything', () => {
    it('keeps the newest N complete even when every rule would drop them', () => {
      expect(kept(history(daily), { maxAgeDays: 1, minKeep: 3 }, '2027-01-01T00:00:00Z')).toEqual(daily.slice(-3));
    });

    it('counts only complete snapshots, never failed or partial ones', () => {
      const times = daily.slice(-5);
      const snaps = history(times, { [times[4]!]: { status: 'failed' }, [times[3]!]: { status: 'partial' } });
      const decisions = applyPolicy(snaps, { maxAgeDays: 1, minKeep: 2 }, new Date('2027-01-01T00:00:00Z'));
      expect(decisions.filter((d) => d.keep).map((d) => d.id)).toEqual([times[2], times[1]]);
      expect(decisions.find((d) => d.id === times[4])!.reasons).toEqual(['failed snapshot']);
    });

    it('does not add reasons to snapshots already kept', () => {
      const decisions = applyPolicy(history(daily), { keepLast: 2, minKeep: 2 }, new Date('2026-03-05T00:00:00Z'));
      expect(decisions[0]!.reasons).toEqual(['last 1']);
    });
  });

  describe('pins', () => {
    it('a pinned snapshot is kept whatever the policy, even a failed one', () => {
      const snaps = history(daily, { [daily[0]!]: { pinned: true }, [daily[1]!]: { pinned: true, status: 'failed' } });
      const decisions = applyPolicy(snaps, { keepLast: 1 }, new Date('2026-03-05T00:00:00Z'));
      expect(decisions.filter((d) => d.keep).map((d) => d.id).sort()).toEqual([daily[0], daily[1], daily[59]]);
      expect(decisions.find((d) => d.id === daily[0])!.reasons).toEqual(['pinned']);
    });
  });

  it('failed and partial snapshots do not fill a bucket', () => {
    const times = ['2026-06-01T01:00:00Z', '2026-06-01T02:00:00Z'];
    const snaps = history(times, { [times[1]!]: { status: 'partial' } });
    expect(kept(snaps, { keepDaily: 1 })).toEqual([times[0]]);
  });

  it('refuses a policy with no keep rule (minKeep alone is a floor, not a rule)', () => {
    expect(() => applyPolicy(history(daily), { minKeep: 3 })).toThrow(/at least one keep rule/);
    expect(() => applyPolicy(history(daily), {})).toThrow(/at least one keep rule/);
  });

  it('an empty history keeps nothing and fails nothing', () => {
    expect(applyPolicy([], { keepLast: 3 })).toEqual([]);
  });
});

describe('durations', () => {
  it('subtracts calendar months and years', () => {
    expect(subtractDuration(new Date('2026-03-31T00:00:00Z'), '1m').toISOString()).toBe('2026-03-03T00:00:00.000Z');
    expect(subtractDuration(new Date('2026-03-01T12:00:00Z'), '1y2d12h').toISOString()).toBe('2025-02-27T00:00:00.000Z');
    expect(durationMs('24h')).toBe(86_400_000);
    expect(() => durationMs('1 day')).toThrow(/invalid duration/);
  });
});
