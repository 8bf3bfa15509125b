import { formatProfile, profileReport, startProfiling } from '../util/stage-profile.ts';
import { buildProgram, outcome, reportError } from './program.ts';

// Started before the command is parsed, so the whole run is measured (the option itself is declared in program.ts).
const profile = process.argv.includes('--profile');
if (profile) startProfiling();

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
if (profile) process.stderr.write(`${formatProfile(profileReport())}\n`);
// Exit explicitly: SDK clients may keep sockets open, and cron must not wait on them.
process.exit(exitCode);
