// Bundles the compiled CLI (dist/cli/main.js) and the packages it uses into dist/bin/main.js,
// which the `imgbuild` executable, dist/bin/imgbuild.cjs, loads. Node 20 spends more of a short
// command loading modules (80 of our files and a few hundred of yaml, commander and listr2) than
// doing its work; bundled, a no-op build starts about 50 ms sooner. Dynamic imports stay split
// points, so watch mode, the registry client and the docker-archive writer are still loaded only
// by the commands that need them.
// Run by `npm run build` after tsc and build-validator.mjs; the library API (dist/index.js) is
// tsc's output, unbundled.
import { chmodSync, copyFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const out = new URL('../dist/bin/', import.meta.url);
rmSync(out, { recursive: true, force: true });
await build({
  entryPoints: { main: fileURLToPath(new URL('../dist/cli/main.js', import.meta.url)) },
  outdir: fileURLToPath(out),
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // CommonJS packages (yaml, commander) call require() for Node's own modules.
  banner: { js: "import { createRequire as __imgbuildRequire } from 'node:module'; const require = __imgbuildRequire(import.meta.url);" },
  sourcemap: 'linked',
  logLevel: 'warning',
});
// The executable is the launcher (src/cli/launcher.cts), which sizes the thread pool and then
// imports ./main.js: the bundle here, as the compiled main.js beside it in dist/cli/.
copyFileSync(new URL('../dist/cli/launcher.cjs', import.meta.url), new URL('imgbuild.cjs', out));
copyFileSync(new URL('../dist/cli/launcher.cjs.map', import.meta.url), new URL('launcher.cjs.map', out));
chmodSync(new URL('imgbuild.cjs', out), 0o755);
// validate-schema.js requires the precompiled validator from next to itself, which a bundler
// does not follow: it sits next to the bundle too.
copyFileSync(new URL('../dist/spec/schema-validator.cjs', import.meta.url), new URL('schema-validator.cjs', out));
