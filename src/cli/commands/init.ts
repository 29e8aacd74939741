/** `imgbuild init`: write a starter spec from a template (node, static, binary). */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { usageError } from '../../errors.js';
import { packageFile } from '../../package-files.js';
import { didYouMean } from '../../spec/did-you-mean.js';
import { parseRepository } from '../../spec/parse-values.js';

const templatesDir = packageFile('templates');

async function templateNames(): Promise<string[]> {
  return (await readdir(templatesDir)).filter((f) => f.endsWith('.yaml')).map((f) => f.replace(/\.yaml$/, '')).sort();
}

/**
 * An image name from a folder's name that `validate` accepts: lowercase letters and digits
 * joined by single dashes ("My Project (v2)" -> "my-project-v2"), or "app" when none is left.
 */
export function nameFor(dir: string): string {
  const name = basename(dir).toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  return name === '' ? 'app' : name;
}

/** Where the templates' first line points editors, relative to the spec as yaml-language-server reads it. */
const SCHEMA = 'node_modules/imgbuild/schemas/image.schema.json';

/**
 * The `$schema` path for a spec in `specDir`: the schema of the nearest imgbuild installed at or
 * above it (`../node_modules/...` for app/image.yaml), or the templates' `./node_modules/...`
 * when there is none (imgbuild not installed yet, or run from elsewhere).
 */
export function schemaPathFor(specDir: string): string {
  for (let dir = specDir; ; dir = dirname(dir)) {
    if (existsSync(join(dir, SCHEMA))) {
      const path = relative(specDir, join(dir, SCHEMA));
      return path.startsWith('../') ? path : `./${path}`;
    }
    if (dirname(dir) === dir) return `./${SCHEMA}`;
  }
}

export function registerInit(program: Command): void {
  program
    .command('init')
    .argument('[file]', 'where to write the spec', 'image.yaml')
    .description('write a starter image spec')
    .option('-t, --template <name>', 'node, static or binary', 'node')
    .option('-n, --name <repository>', 'image name (default: the folder name)')
    .option('-f, --force', 'overwrite an existing file')
    .action(async (file: string, flags: { template: string; name?: string; force?: boolean }) => {
      const names = await templateNames();
      if (!names.includes(flags.template)) {
        const guess = didYouMean(flags.template, names);
        throw usageError(`there is no template "${flags.template}"`, guess ? `did you mean "${guess}"?` : `templates: ${names.join(', ')}`);
      }
      if (existsSync(file) && !flags.force) throw usageError(`${file} exists already`, 'pass --force to overwrite it, or name another file');
      const name = flags.name ?? nameFor(resolve(file, '..'));
      // A starter that does not validate is no start: the name is checked as `validate` will.
      const named = parseRepository(name);
      if (!named.ok) throw usageError(`--name ${named.message}`, named.hint);
      // A function, so "$&" or "$1" in a name is not read as a replacement pattern.
      const text = (await readFile(join(templatesDir, `${flags.template}.yaml`), 'utf8')).replace('${NAME}', () => name)
        .replace(`$schema=./${SCHEMA}`, () => `$schema=${schemaPathFor(dirname(resolve(file)))}`);
      // A spec for a folder not made yet (init app/image.yaml) makes it, as `git init dir` does.
      await mkdir(dirname(resolve(file)), { recursive: true });
      await writeFile(file, text, { flag: flags.force ? 'w' : 'wx' });
      process.stdout.write(`wrote ${file} (template ${flags.template}); next: put the files it copies in place, then imgbuild plan ${file}\n`);
    });
}
