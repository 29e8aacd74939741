import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nameFor } from '../../src/cli/commands/init.js';
import { parseRepository } from '../../src/spec/parse-values.js';
import { runCli, TempDirs } from '../helpers/imgbuild.js';

const temps = new TempDirs();
afterAll(() => temps.cleanup());

describe('init', () => {
  it('names the image after its folder, always as a name validate accepts', () => {
    const names = ['My Project (v2)', 'web.app', 'x--y_', '__', 'Über Tool', 'api'].map((folder) => nameFor(`/work/${folder}`));
    expect(names).toEqual(['my-project-v2', 'web-app', 'x-y', 'app', 'ber-tool', 'api']);
    for (const name of names) expect(parseRepository(name).ok, name).toBe(true);
  });

  it('points the editor at the schema of the imgbuild the project installed, from a spec in a subfolder too', async () => {
    const project = await temps.make();
    const schema = join(project, 'node_modules/imgbuild/schemas/image.schema.json');
    await mkdir(dirname(schema), { recursive: true });
    await writeFile(schema, '{}');
    for (const [file, path] of [['image.yaml', './node_modules/imgbuild/schemas/image.schema.json'], ['deploy/web/image.yaml', '../../node_modules/imgbuild/schemas/image.schema.json']] as const) {
      const r = await runCli(['init', file, '-t', 'static', '-n', 'e2e/init'], { cwd: project });
      expect(r.exitCode, r.stderr).toBe(0);
      const first = (await readFile(join(project, file), 'utf8')).split('\n')[0];
      expect(first).toBe(`# yaml-language-server: $schema=${path}`);
      expect(existsSync(join(project, dirname(file), path))).toBe(true);
    }
  });
});
