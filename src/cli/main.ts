import { buildProgram, outcome, reportError } from './program.ts';

const program = buildProgram();
let exitCode: number;
try {
  if (process.argv.length <= 2) {
    program.outputHelp();
    exitCode = 2;
  } else {
    await program.parseAsync(process.argv);
    exitCode = outcome.exitCode;
  }
} catch (err) {
  exitCode = reportError(err, process.argv.includes('-v') || process.argv.includes('--verbose'));
}
// Exit explicitly: SDK clients may keep sockets open, and cron must not wait on them.
process.exit(exitCode);
