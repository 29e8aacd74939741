#!/usr/bin/env node
// The `imgbuild` executable: everything else lives in program.ts, which tests call directly.
import { main } from './program.js';

process.exitCode = await main(process.argv.slice(2));
