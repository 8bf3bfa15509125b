// Loaded with `node --require` (RunOptions.ownRss): on exit, writes this process's own peak RSS (VmHWM, bytes) to
// $BAK_PEAK_RSS_FILE. GNU time's %M is the largest of a process and its children, so a bak backup that runs a
// heavier child (the Datomic stand-in, pg_dump) would be charged with the child's peak; this is bak's alone.
// Children are not measured: the variable and the --require are taken out of the environment they inherit.
'use strict';
const fs = require('node:fs');
const file = process.env.BAK_PEAK_RSS_FILE;
delete process.env.BAK_PEAK_RSS_FILE;
process.env.NODE_OPTIONS = (process.env.NODE_OPTIONS ?? '').replace(/--require[= ]\S*peak-rss\.cjs/, '').trim();
if (file) {
  process.on('exit', () => {
    const kib = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1];
    if (kib) fs.writeFileSync(file, String(Number(kib) * 1024));
  });
}
