import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { specReference } from '../../src/spec/reference.js';

describe('README', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

  it('embeds the spec reference generated from the schema', () => {
    const section = readme.split('<!-- spec-reference:start -->\n')[1]?.split('<!-- spec-reference:end -->')[0];
    expect(section?.trim()).toBe(specReference().trim());
  });

  it('shows the set-up command and the test command on its first screen', () => {
    const firstScreen = readme.split('\n').slice(0, 20).join('\n');
    expect(firstScreen).toContain('npm ci && npm run example');
    expect(firstScreen).toContain('npm test');
  });
});
