// The CLI's entry, which the `imgbuild` executable (launcher.cts) loads once it has sized the
// thread pool: everything else lives in program.ts, which tests call directly.
import { main } from './program.js';
import { holdYoungGeneration } from './young-generation.js';

// Before the engine is loaded (program.ts imports it only when a command runs): see young-generation.ts.
holdYoungGeneration();

// A reader that stops early (`imgbuild plan --json | head`) is not a failure of ours.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

process.exitCode = await main(process.argv.slice(2));
