import { describe, expect, it } from 'vitest';
import { formatDiagnostic } from '../../src/cli/diagnostics.js';

describe('code frames', () => {
  it('puts the caret under the column, keeping the tabs before it', () => {
    const lines = ['layers:', '\tmode:\t"0999"'];
    const text = formatDiagnostic({ position: { file: 'image.yaml', line: 2, col: 8 }, message: 'bad mode', pointer: '' }, lines);
    expect(text.split('\n')).toEqual(['image.yaml:2:8: error: bad mode', '  1 | layers:', '> 2 | \tmode:\t"0999"', '    | \t     \t^']);
  });

  it('puts a caret past the end of the line where the column is', () => {
    const text = formatDiagnostic({ position: { file: 'image.yaml', line: 1, col: 9 }, message: 'x', pointer: '' }, ['layers:']);
    expect(text.split('\n').at(-1)).toBe('    |         ^');
  });
});
