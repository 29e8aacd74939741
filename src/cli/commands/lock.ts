/** `imgbuild lock <spec>`: pin the spec's base image, per platform, in image.lock. */
import type { Command } from 'commander';
import { interruptible } from '../interrupt.js';
import { cacheDirOf, withRegistryOptions, withSpecOptions, type SpecFlags } from '../options.js';

export function registerLock(program: Command): void {
  withRegistryOptions(withSpecOptions(program.command('lock').argument('<spec>', 'the image spec (image.yaml)')))
    .description('resolve the base image of each platform to a digest and write it to the lock file beside the spec')
    .action((file: string, flags: SpecFlags & { insecureRegistry?: string[] }) => interruptible(false, async () => {
      const [{ lockBases }, { lockPathFor, readLock, writeLock }, { loadSpec }, { ContentStore }] = await Promise.all([
        import('../../lock/bases.js'),
        import('../../lock/lockfile.js'),
        import('../../spec/load.js'),
        import('../../store/content-store.js'),
      ]);
      const spec = await loadSpec(file, { vars: flags.var, env: process.env });
      const store = await ContentStore.open(cacheDirOf(flags));
      const lock = await lockBases({ specFile: spec.specFile, base: spec.base, platforms: spec.platforms, store, insecure: flags.insecureRegistry });
      const path = lockPathFor(spec.specFile);
      const before = await readLock(path).catch(() => undefined);
      await writeLock(spec.specFile, lock);
      const lines = Object.entries(lock.base.digests).map(([p, d]) => {
        const old = before?.base.ref === lock.base.ref ? before.base.digests[p] : undefined;
        return `  ${p}  ${d}${old && old !== d ? `  (was ${old})` : old ? '  (unchanged)' : ''}`;
      });
      process.stdout.write(`wrote ${path}: ${lock.base.ref}\n${lines.join('\n') || '  (scratch: nothing to pin)'}\n`);
    }));
}
