import type { z } from 'zod';

/** Formats a zod failure as `path: problem (got value)` lines, so an operator can find the line at fault. */
export function describeZodError(error: z.ZodError, input: unknown): string {
  return error.issues
    .map((issue) => {
      const where = issue.path.length === 0 ? '(top level)' : issue.path.map(String).join('.');
      const value = valueAt(input, issue.path);
      const got = value === undefined ? '' : ` (got ${preview(value)})`;
      return `${where}: ${issue.message}${got}`;
    })
    .join('\n');
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let current: unknown = input;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
