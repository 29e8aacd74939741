import { describe, expect, it } from 'vitest';
import { nameFor } from '../../src/cli/commands/init.js';
import { parseRepository } from '../../src/spec/parse-values.js';

describe('init', () => {
  it('names the image after its folder, always as a name validate accepts', () => {
    const names = ['My Project (v2)', 'web.app', 'x--y_', '__', 'Über Tool', 'api'].map((folder) => nameFor(`/work/${folder}`));
    expect(names).toEqual(['my-project-v2', 'web-app', 'x-y', 'app', 'ber-tool', 'api']);
    for (const name of names) expect(parseRepository(name).ok, name).toBe(true);
  });
});
