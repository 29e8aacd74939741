/**
 * DESIGN promise 3 through the CLI: a writer process (fixtures/live-writer.mjs) keeps rewriting,
 * replacing, creating, deleting and hard-linking files in the context while several `apply`
 * runs read it. Each run either succeeds with an image umoci unpacks (verifying every blob)
 * whose file bodies are each one complete version the writer wrote, holding every file that
 * existed through the whole run, or fails with exit 1 and a message naming the context file
 * that would not hold still: never a corrupt tar, never a silently missing file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, TempDirs, writeSpec, writeTree, parseEvents } from '../helpers/imgbuild.js';
import { listRootfs, umociUnpack } from '../helpers/oci-tools.js';
import { missingTools } from '../helpers/tools.js';
import { checkBody } from './fixtures/body.mjs';

const WRITER = join(import.meta.dirname, 'fixtures', 'live-writer.mjs');
const RUNS = 3;
/** "all": files are also deleted; "no-delete": only rewritten, replaced, created and hard-linked. */
type WriterMode = 'all' | 'no-delete';
const KEEP = 16;

const temps = new TempDirs();
let writer: ChildProcess | undefined;
afterAll(async () => {
  await stopWriter();
  await temps.cleanup();
});

async function startWriter(ctx: string, scratch: string, mode: WriterMode): Promise<void> {
  writer = spawn(process.execPath, [WRITER, ctx, scratch, '7', mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [first] = (await once(writer.stdout!, 'data')) as [Buffer];
  if (!first.toString().startsWith('ready')) throw new Error(`live writer said ${first.toString()}`);
}

async function stopWriter(): Promise<void> {
  const w = writer;
  writer = undefined;
  if (!w || w.exitCode !== null || w.signalCode !== null) {
    if (w && w.exitCode !== null) throw new Error(`the live writer stopped by itself (exit ${w.exitCode})`);
    return;
  }
  const gone = once(w, 'exit');
  w.kill('SIGKILL');
  await gone;
}

/** Problems with one unpacked image: torn bodies, missing files that never went away, wrong stable files. */
async function judgeImage(rootfs: string, stable: Record<string, string>): Promise<{ problems: string[]; files: number }> {
  const problems: string[] = [];
  const files = (await listRootfs(rootfs)).filter((e) => e.type === 'file').map((e) => e.path);
  for (const [rel, body] of Object.entries(stable)) {
    const got = await readFile(join(rootfs, 'live', rel), 'utf8').catch(() => undefined);
    if (got !== body) problems.push(`/live/${rel}: ${got === undefined ? 'missing' : 'wrong content'}`);
  }
  const mustHave = [...Array.from({ length: KEEP }, (_, i) => `/live/keep/k${i}.dat`), '/live/keep/big.dat'];
  for (const p of mustHave) if (!files.includes(p)) problems.push(`${p}: missing, though it existed through the whole run`);
  for (const p of files.filter((f) => !f.startsWith('/live/stable/'))) {
    const claim = checkBody(await readFile(join(rootfs, p)));
    if (!claim) problems.push(`${p}: not a complete version the writer wrote`);
    // keep/ files are never hard links of another file: each holds its own versions.
    else if (p.startsWith('/live/keep/') && `/live/${claim.name}` !== p) problems.push(`${p}: holds a version of ${claim.name}`);
  }
  return { problems, files: files.length };
}

describe.skipIf(missingTools('umoci').length > 0)('apply on a live file system', () => {
  it.each(['all', 'no-delete'] as const)(`${RUNS} applies while a writer churns the context (%s): each a sound image or a named failure`, async (mode) => {
    const dir = await temps.make();
    const ctx = join(dir, 'ctx');
    const scratch = join(dir, 'scratch');
    await mkdir(scratch);
    const stable: Record<string, string> = {};
    for (let i = 0; i < 10; i++) stable[`stable/s${i}.txt`] = `stable file ${i}\n`.repeat(i + 1);
    await writeTree(ctx, stable);
    const spec = await writeSpec(dir, {
      name: 'e2e/live',
      context: 'ctx',
      layers: [
        { name: 'stable', copy: [{ from: 'stable/', to: '/live/stable/' }] },
        { name: 'keep', copy: [{ from: 'keep/', to: '/live/keep/', exclude: ['big.dat'] }] },
        { name: 'big', copy: [{ from: 'keep/big.dat', to: '/live/keep/big.dat' }] },
        { name: 'churn', copy: [{ from: 'churn/', to: '/live/churn/' }] },
      ],
      output: [{ oci: './${OUT}/layout' }],
    });
    await startWriter(ctx, scratch, mode);

    const outcomes: string[] = [];
    for (let run = 0; run < RUNS; run++) {
      const out = `out-${run}`;
      const r = await runCli(['apply', spec, '--json', '--cache-dir', join(dir, 'cache'), '--var', `OUT=${out}`]);
      if (r.exitCode === 0) {
        const done = parseEvents(r.stdout).find((e) => e.type === 'done');
        expect(done, r.stdout).toBeDefined();
        // umoci checks every blob's digest and the tar stream as it applies the layers.
        const rootfs = await umociUnpack(join(dir, out, 'layout'), 'latest', join(dir, `bundle-${run}`));
        const judged = await judgeImage(rootfs, stable);
        expect(judged.problems, `run ${run}`).toEqual([]);
        outcomes.push(`built: ${judged.files} files, each a complete version`);
      } else {
        expect(r.exitCode, `run ${run}: ${r.stderr}`).toBe(1);
        // The message names the file, by its path in the context.
        expect(r.stderr, `run ${run}`).toMatch(new RegExp(`${ctx}/(keep|churn)/\\S+`));
        expect(r.stderr).not.toMatch(/internal error|^\s+at /m);
        outcomes.push(`failed: ${r.stderr.trim().split('\n')[0]}`);
      }
    }
    await stopWriter();
    process.stderr.write(`live file system (${mode}) outcomes:\n  ${outcomes.join('\n  ')}\n`);
  });
});
