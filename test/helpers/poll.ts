/** Polls `check` every `everyMs` until it holds (true) or `ms` have passed (then its last answer). */
export async function eventually(check: () => boolean | Promise<boolean>, ms: number, everyMs = 50): Promise<boolean> {
  for (const until = Date.now() + ms; Date.now() < until; await new Promise((resolve) => setTimeout(resolve, everyMs))) if (await check()) return true;
  return check();
}
