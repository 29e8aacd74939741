// `node layers-only.mjs SPEC CACHE`: a cold build's layer work alone. The plan is made first and
// the clock starts after it, so the figure is what a build would take if planning cost nothing
// on the critical path, i.e. if the plan were streamed into the layer writer instead of finished
// before it. Prints {"seconds": ...}. Reaches into dist/ (our own modules, built by `npm run bench`).
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = join(dirname(fileURLToPath(import.meta.url)), '../../dist');
const { planSpec } = await import(join(dist, 'plan/plan-spec.js'));
const { buildLayer } = await import(join(dist, 'layer/build-layer.js'));
const { ContentStore } = await import(join(dist, 'store/content-store.js'));

const [spec, cacheDir] = process.argv.slice(2);
const planned = await planSpec(spec, { cacheDir, forBuild: true });
const store = await ContentStore.open(cacheDir);
const { plan, digests } = planned;

const started = performance.now();
const layers = [...plan.layers];
const one = async () => {
  for (let layer = layers.shift(); layer; layer = layers.shift()) {
    // As the build does it: the writer feeds the stat cache what it hashed.
    await buildLayer(layer, { store, epoch: plan.epoch, compression: plan.compression, remember: (p, h, at) => digests.remember(p, h, at) });
  }
};
// As many layers at once as `apply` builds (one per core).
await Promise.all(Array.from({ length: availableParallelism() }, one));
process.stdout.write(`${JSON.stringify({ seconds: (performance.now() - started) / 1000 })}\n`);
