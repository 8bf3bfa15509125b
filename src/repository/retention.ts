import { UsageError } from '../errors.ts';
import type { SnapshotStatus } from './manifest.ts';

/** The retention policy of one source (config `retention`, or flags). */
export interface RetentionPolicy {
  keepLast?: number | undefined;
  keepHourly?: number | undefined;
  keepDaily?: number | undefined;
  keepWeekly?: number | undefined;
  keepMonthly?: number | undefined;
  keepYearly?: number | undefined;
  /** Keep everything within this duration of the newest complete snapshot (`7d`, `1y6m`, `36h`). */
  keepWithin?: string | undefined;
  /** Keep everything younger than this many days (counted from now). */
  maxAgeDays?: number | undefined;
  /** A floor on the result: the newest `minKeep` complete snapshots are always kept. */
  minKeep?: number | undefined;
  /** IANA time zone for hourly…yearly buckets; UTC by default. */
  timeZone?: string | undefined;
}

export interface PolicySnapshot {
  id: string;
  startedAt: string;
  status: SnapshotStatus;
  pinned: boolean;
}

export interface PolicyDecision {
  id: string;
  startedAt: string;
  keep: boolean;
  /** Why it is kept (every rule that keeps it), or why it goes. */
  reasons: string[];
}

const BUCKET_RULES = ['keepHourly', 'keepDaily', 'keepWeekly', 'keepMonthly', 'keepYearly'] as const;
const KEEP_RULES = ['keepLast', ...BUCKET_RULES, 'keepWithin', 'maxAgeDays'] as const;

export function hasKeepRule(policy: RetentionPolicy): boolean {
  return KEEP_RULES.some((rule) => policy[rule] !== undefined);
}

/**
 * Decides, for the snapshots of one source, which are kept and why. A snapshot is kept if any rule
 * keeps it; pins always keep; `minKeep` is applied last, to the result, as a true floor. Failed and
 * partial snapshots are never counted by a rule (nor by `minKeep`) and go unless pinned.
 */
export function applyPolicy(snapshots: readonly PolicySnapshot[], policy: RetentionPolicy, now: Date = new Date()): PolicyDecision[] {
  if (!hasKeepRule(policy)) throw new UsageError('a retention policy needs at least one keep rule (keepLast, keepDaily, keepWithin, maxAgeDays …)');
  const zone = policy.timeZone ?? 'UTC';
  const parts = zonedParts(zone);
  const newestFirst = [...snapshots].sort((a, b) => (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : a.id < b.id ? 1 : -1));
  const reasons = new Map<string, string[]>(newestFirst.map((s) => [s.id, []]));
  const keep = (id: string, reason: string) => reasons.get(id)!.push(reason);
  const complete = newestFirst.filter((s) => s.status === 'complete');

  complete.slice(0, policy.keepLast ?? 0).forEach((s, i) => keep(s.id, `last ${i + 1}`));

  for (const rule of BUCKET_RULES) {
    const count = policy[rule];
    if (!count) continue;
    let lastBucket: string | undefined;
    let kept = 0;
    for (const s of complete) {
      if (kept >= count) break;
      const bucket = bucketOf(rule, parts(new Date(s.startedAt)));
      if (bucket === lastBucket) continue;
      lastBucket = bucket;
      kept++;
      keep(s.id, `${rule.slice(4).toLowerCase()} ${bucket}`);
    }
  }

  if (policy.keepWithin && complete[0]) {
    const since = subtractDuration(new Date(complete[0].startedAt), policy.keepWithin);
    for (const s of complete) if (Date.parse(s.startedAt) >= since.getTime()) keep(s.id, `within ${policy.keepWithin} of newest`);
  }
  if (policy.maxAgeDays !== undefined) {
    const since = now.getTime() - policy.maxAgeDays * 86_400_000;
    for (const s of complete) if (Date.parse(s.startedAt) >= since) keep(s.id, `younger than ${policy.maxAgeDays} days`);
  }
  for (const s of newestFirst) if (s.pinned) keep(s.id, 'pinned');
  complete.slice(0, policy.minKeep ?? 0).forEach((s, i) => {
    if (reasons.get(s.id)!.length === 0) keep(s.id, `minKeep (newest ${i + 1} of ${policy.minKeep})`);
  });

  return newestFirst.map((s) => {
    const why = reasons.get(s.id)!;
    if (why.length > 0) return { id: s.id, startedAt: s.startedAt, keep: true, reasons: why };
    return { id: s.id, startedAt: s.startedAt, keep: false, reasons: [s.status === 'complete' ? 'no rule keeps it' : `${s.status} snapshot`] };
  });
}

interface LocalParts {
  year: number;
  month: number;
  day: number;
  hour: number;
}

function zonedParts(timeZone: string): (date: Date) => LocalParts {
  let format: Intl.DateTimeFormat;
  try {
    format = new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', hourCycle: 'h23' });
  } catch {
    throw new UsageError(`unknown time zone "${timeZone}" (use an IANA name such as Europe/Berlin)`);
  }
  return (date) => {
    const out: Record<string, number> = {};
    for (const p of format.formatToParts(date)) if (p.type !== 'literal') out[p.type] = Number(p.value);
    return { year: out.year!, month: out.month!, day: out.day!, hour: out.hour! };
  };
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

function bucketOf(rule: (typeof BUCKET_RULES)[number], p: LocalParts): string {
  switch (rule) {
    case 'keepHourly':
      return `${p.year}-${pad(p.month)}-${pad(p.day)}T${pad(p.hour)}`;
    case 'keepDaily':
      return `${p.year}-${pad(p.month)}-${pad(p.day)}`;
    case 'keepWeekly':
      return isoWeek(p.year, p.month, p.day);
    case 'keepMonthly':
      return `${p.year}-${pad(p.month)}`;
    case 'keepYearly':
      return String(p.year);
  }
}

/** ISO 8601 week of a calendar date: weeks start on Monday; week 1 holds the year's first Thursday. */
export function isoWeek(year: number, month: number, day: number): string {
  const date = new Date(Date.UTC(year, month - 1, day));
  const weekday = date.getUTCDay() || 7;
  date.setUTCDate(date.getUTCDate() + 4 - weekday);
  const weekYear = date.getUTCFullYear();
  const week = Math.ceil(((date.getTime() - Date.UTC(weekYear, 0, 1)) / 86_400_000 + 1) / 7);
  return `${weekYear}-W${pad(week)}`;
}

/** `1y6m2w3d12h` before `from`; months and years are calendar months and years. */
export function subtractDuration(from: Date, duration: string): Date {
  if (!/^(\d+[hdwmy])+$/.test(duration)) throw new UsageError(`invalid duration "${duration}": use e.g. 36h, 7d, 2w, 6m, 1y`);
  const d = new Date(from);
  for (const [, amount, unit] of duration.matchAll(/(\d+)([hdwmy])/g)) {
    const n = Number(amount);
    if (unit === 'y') d.setUTCFullYear(d.getUTCFullYear() - n);
    else if (unit === 'm') d.setUTCMonth(d.getUTCMonth() - n);
    else if (unit === 'w') d.setUTCDate(d.getUTCDate() - 7 * n);
    else if (unit === 'd') d.setUTCDate(d.getUTCDate() - n);
    else d.setUTCHours(d.getUTCHours() - n);
  }
  return d;
}

/** Milliseconds in a duration, for grace periods (months as 30 days, years as 365). */
export function durationMs(duration: string): number {
  if (!/^(\d+[hdwmy])+$/.test(duration)) throw new UsageError(`invalid duration "${duration}": use e.g. 36h, 7d, 2w, 6m, 1y`);
  const unitMs: Record<string, number> = { h: 3_600_000, d: 86_400_000, w: 604_800_000, m: 30 * 86_400_000, y: 365 * 86_400_000 };
  let total = 0;
  for (const [, amount, unit] of duration.matchAll(/(\d+)([hdwmy])/g)) total += Number(amount) * unitMs[unit!]!;
  return total;
}

/**
 * The longest a policy keeps a snapshot, in days, for data a snapshot keeps outside the repository with its own
 * expiry (BigQuery table snapshots): hourly…yearly buckets at their widest, keepWithin, maxAgeDays. Undefined when a
 * rule (keepLast alone, minKeep) keeps snapshots for an unbounded time: such data gets no expiry and gc releases it.
 */
export function retentionHorizonDays(policy: RetentionPolicy): number | undefined {
  if (policy.keepLast !== undefined || policy.minKeep) return undefined;
  const days: number[] = [];
  if (policy.keepHourly) days.push(policy.keepHourly / 24 + 1);
  if (policy.keepDaily) days.push(policy.keepDaily + 1);
  if (policy.keepWeekly) days.push(policy.keepWeekly * 7 + 7);
  if (policy.keepMonthly) days.push(policy.keepMonthly * 31 + 31);
  if (policy.keepYearly) days.push(policy.keepYearly * 366 + 366);
  if (policy.keepWithin) days.push(durationMs(policy.keepWithin) / 86_400_000);
  if (policy.maxAgeDays) days.push(policy.maxAgeDays);
  return days.length > 0 ? Math.ceil(Math.max(...days)) : undefined;
}
