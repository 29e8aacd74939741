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

  it('shows a window of a long line around the column, the line above cut the same, the caret still under it', () => {
    const long = `{"name": "t/app", "layers": [${'{"name": "l", "files": []}, '.repeat(8000)}{"name": "l", "mode": "0999"}]}`;
    const col = long.indexOf('"0999"') + 1;
    const lines = ['x'.repeat(300_000), long];
    const frame = formatDiagnostic({ position: { file: 'image.json', line: 2, col }, message: 'bad mode', pointer: '' }, lines).split('\n').slice(1);
    expect(frame.every((l) => l.length < 140)).toBe(true);
    const [above, at, caret] = frame as [string, string, string];
    expect(at).toMatch(/^> 2 \| ….*"mode": "0999"}]}$/);
    expect(above).toMatch(/^  1 \| …x+…$/);
    expect(caret.indexOf('^')).toBe(at.indexOf('"0999"'));
  });
});
