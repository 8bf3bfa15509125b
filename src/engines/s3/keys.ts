function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      // `**/` matches any number of whole segments, including none.
      if (glob[i + 2] === '/') {
        re += '(?:.*/)?';
        i += 2;
      } else {
        re += '.*';
        i++;
      }
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's');
}

/** Include/exclude globs over keys relative to the prefix: included if no include glob or one matches, and no exclude glob matches. */
export function keyFilter(include: readonly string[], exclude: readonly string[]): (relativeKey: string) => boolean {
  const inc = include.map(globToRegExp);
  const exc = exclude.map(globToRegExp);
  return (key) => (inc.length === 0 || inc.some((r) => r.test(key))) && !exc.some((r) => r.test(key));
}
