#!/usr/bin/env node
/**
 * The `imgbuild` executable's first step, in CommonJS on purpose: it sizes libuv's thread pool,
 * which compresses the layers (layer/parallel-gzip.ts deflates each block there), before anything
 * starts the pool, then loads the CLI (main.ts). The pool is made once, at its first use, with
 * UV_THREADPOOL_SIZE threads (4 when unset), and Node 20 reads an ES module entry through the
 * pool: set from there, the variable came too late (Node 22 and 24 load modules without the
 * pool, so there the first file read starts it). With 4 threads a layer was compressed on 4
 * cores at most, whatever the machine had.
 *
 * One thread per core, and one more for the file writes that go through the pool while every
 * core deflates. A size the environment sets is kept.
 */
import { availableParallelism } from 'node:os';

// Empty counts as unset: libuv reads an empty value as 0, and runs the pool on 1 thread.
if (!process.env.UV_THREADPOOL_SIZE) process.env.UV_THREADPOOL_SIZE = String(availableParallelism() + 1);

// Next to this file both where tsc compiles it (dist/cli/) and where the build copies it beside
// the bundle (dist/bin/, see scripts/bundle-cli.mjs).
void import('./main.js');
