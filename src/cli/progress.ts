import { createRequire } from 'node:module';
import type cliProgressModule from 'cli-progress';
import type { ProgressSink } from '../util/progress.ts';
import { formatBytes } from './output.ts';

// Loaded when a progress line is drawn (a terminal), not by every command: cron runs never pay for it.
const load = () => createRequire(import.meta.url)('cli-progress') as typeof cliProgressModule;

/** Redraws per second: enough to watch, few enough to cost nothing. */
const FPS = 4;

/**
 * One progress line on stderr, redrawn in place by cli-progress, that log lines pass over: while it is
 * shown, a log line goes through the bar (`log`), which clears the line, writes the log line, and draws
 * the bar again below it, so the two never garble each other.
 */
export class TerminalProgress implements ProgressSink {
  private readonly cliProgress = load();
  private readonly options: { stream: NodeJS.WriteStream; forced: boolean };
  private bars: cliProgressModule.MultiBar | undefined;
  private bar: cliProgressModule.SingleBar | undefined;
  private readonly state = { label: '', items: 0, bytes: 0, itemsTotal: 0, bytesTotal: 0, final: false, finished: false };
  private startedAt = 0;

  constructor(options: { stream?: NodeJS.WriteStream; forced?: boolean } = {}) {
    this.options = { stream: options.stream ?? process.stderr, forced: Boolean(options.forced) };
  }

  /** Shows the line for one operation ("backup", "restore" …); ends any earlier one. */
  begin(title: string): void {
    this.end(false);
    Object.assign(this.state, { label: title, items: 0, bytes: 0, itemsTotal: 0, bytesTotal: 0, final: false, finished: false });
    this.startedAt = Date.now();
    // A MultiBar per operation: one that was stopped keeps its idea of where the cursor is, and a second bar on it
    // would move up over the line printed since.
    this.bars = new this.cliProgress.MultiBar({
      stream: this.options.stream,
      fps: FPS,
      // --progress on a pipe: a line every few seconds instead of redraws.
      noTTYOutput: this.options.forced,
      // Off a terminal the last line is printed by the flush in end(); stop() would print it a second time.
      clearOnComplete: this.options.forced,
      notTTYSchedule: 5000,
      hideCursor: false,
      linewrap: false,
      gracefulExit: false,
      format: (_options, params) => this.render(params),
    });
    this.bar = this.bars.create(1, 0, {});
  }

  activity(label: string): void {
    this.state.label = label;
  }

  expect(items: number, bytes: number): void {
    this.state.itemsTotal += items;
    this.state.bytesTotal += bytes;
    this.sync();
  }

  totalsKnown(): void {
    this.state.final = true;
    this.sync();
  }

  advance(items: number, bytes: number): void {
    this.state.items += items;
    this.state.bytes += bytes;
    this.sync();
  }

  /** Draws the last state (at 100 % when the operation succeeded) and leaves it on its own line. */
  end(succeeded: boolean): void {
    if (!this.bar || !this.bars) return;
    if (succeeded) {
      this.state.finished = true;
      // Done is done: what was skipped (unchanged, already there) counts as handled.
      this.state.items = this.state.itemsTotal = Math.max(this.state.itemsTotal, this.state.items);
      this.state.bytes = this.state.bytesTotal = Math.max(this.state.bytesTotal, this.state.bytes);
    }
    this.sync();
    // MultiBar.stop draws the bars but not log lines still buffered: flush those first.
    this.bars.update();
    this.bars.stop();
    this.bar = undefined;
    this.bars = undefined;
  }

  /** A log line: through the bar while it is shown, else straight to stderr. */
  log(text: string): void {
    if (this.bars) this.bars.log(text);
    else process.stderr.write(text);
  }

  private sync(): void {
    // The bar's own value and total feed cli-progress's ETA; bytes when they are known, else items.
    if (!this.bar) return;
    const byBytes = this.state.bytesTotal > 0;
    const total = byBytes ? this.state.bytesTotal : this.state.itemsTotal;
    this.bar.setTotal(Math.max(1, total));
    this.bar.update(byBytes ? this.state.bytes : this.state.items);
  }

  private render(params: { eta: number; progress: number }): string {
    const s = this.state;
    const seconds = Math.max(0.001, (Date.now() - this.startedAt) / 1000);
    const parts = [s.label];
    const known = s.final || s.finished;
    if (known && (s.bytesTotal > 0 || s.itemsTotal > 0)) {
      const fraction = s.finished ? 1 : Math.min(1, s.bytesTotal > 0 ? s.bytes / s.bytesTotal : s.items / s.itemsTotal);
      parts.push(`${this.cliProgress.Format.BarFormat(fraction, { barsize: 20, barCompleteString: '='.repeat(20), barIncompleteString: '-'.repeat(20), barGlue: '' } as cliProgressModule.Options)} ${Math.floor(fraction * 100)} %`);
    }
    if (s.itemsTotal > 0 && known) parts.push(`${s.items}/${s.itemsTotal} items`);
    else if (s.items > 0 || s.itemsTotal > 0) parts.push(`${s.items} items`);
    parts.push(s.bytesTotal > 0 && known ? `${formatBytes(s.bytes)}/${formatBytes(s.bytesTotal)}` : formatBytes(s.bytes));
    parts.push(`${formatBytes(Math.round(s.bytes / seconds))}/s`);
    if (s.finished) parts.push(`done in ${formatSeconds(seconds)}`);
    else if (known && Number.isFinite(params.eta) && params.eta > 0) parts.push(`ETA ${formatSeconds(params.eta)}`);
    else parts.push(formatSeconds(seconds));
    return parts.join('  ');
  }
}

function formatSeconds(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
