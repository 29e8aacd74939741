import { describe, expect, it } from 'vitest';
import { buildConfigFile, mergeEnv, mergeRuntime } from '../../src/image/config.js';
import { sha256 } from '../../src/image/digest.js';
import type { ImageConfigFile } from '../../src/image/types.js';

const d = (s: string) => sha256(s);
const platform = { os: 'linux', architecture: 'amd64' };
const created = '2024-01-01T00:00:00Z';

const base: ImageConfigFile = {
  created: '2020-01-01T00:00:00Z',
  architecture: 'amd64',
  os: 'linux',
  config: {
    Env: ['PATH=/usr/bin', 'LANG=C'],
    Entrypoint: ['/docker-entrypoint.sh'],
    Cmd: ['nginx'],
    WorkingDir: '/srv',
    User: 'nginx',
    Labels: { a: '1', b: '2' },
    ExposedPorts: { '80/tcp': {} },
    Volumes: { '/data': {} },
    StopSignal: 'SIGQUIT',
    Healthcheck: { Test: ['CMD', 'true'] },
  } as ImageConfigFile['config'],
  rootfs: { type: 'layers', diff_ids: [d('base0'), d('base1')] },
  history: [{ created_by: 'base layer 0' }, { created_by: 'ENV', empty_layer: true }, { created_by: 'base layer 1' }],
};

describe('buildConfigFile', () => {
  it('puts the base layers and history first, then one entry per new layer', () => {
    const c = buildConfigFile({ base, platform, runtime: {}, diffIds: [d('n0'), d('n1')], history: ['imgbuild layer deps', 'imgbuild layer app'], created });
    expect(c.rootfs.diff_ids).toEqual([d('base0'), d('base1'), d('n0'), d('n1')]);
    expect(c.history?.map((h) => h.created_by)).toEqual(['base layer 0', 'ENV', 'base layer 1', 'imgbuild layer deps', 'imgbuild layer app']);
    expect(c.history?.at(-1)).toEqual({ created, created_by: 'imgbuild layer app' });
    expect(c.created).toBe(created);
    expect(Object.keys(c)).toEqual(['created', 'architecture', 'os', 'config', 'rootfs', 'history']);
  });

  it('gives each base layer without a history entry an empty one first, so every layer keeps its own entry', () => {
    const noHistory = buildConfigFile({ base: { ...base, history: undefined }, platform, runtime: {}, diffIds: [d('n0')], history: ['imgbuild layer app'], created });
    expect(noHistory.history).toEqual([{}, {}, { created, created_by: 'imgbuild layer app' }]);
    const short = buildConfigFile({ base: { ...base, history: [{ created_by: 'ENV', empty_layer: true }, { created_by: 'base layer 1' }] }, platform, runtime: {}, diffIds: [d('n0')], history: ['imgbuild layer app'], created });
    expect(short.history?.map((h) => h.created_by)).toEqual([undefined, 'ENV', 'base layer 1', 'imgbuild layer app']);
  });

  it('takes os, architecture and variant from the platform being built, not the base', () => {
    const c = buildConfigFile({ base, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' }, runtime: {}, diffIds: [], history: [], created });
    expect([c.os, c.architecture, c.variant]).toEqual(['linux', 'arm64', 'v8']);
  });

  it('refuses a history that does not match the new layers', () => {
    expect(() => buildConfigFile({ platform, runtime: {}, diffIds: [d('x')], history: [], created })).toThrow(/history/);
  });

  it('without a base has only the new layers and no empty members', () => {
    const c = buildConfigFile({ platform, runtime: { Cmd: ['/app'], Env: [] }, diffIds: [d('a')], history: ['l'], created });
    expect(c.config).toEqual({ Cmd: ['/app'] });
    expect(c.rootfs.diff_ids).toEqual([d('a')]);
  });
});

describe('mergeRuntime (as docker build does)', () => {
  it('merges Env by name: base names in base order, spec values win, new names after', () => {
    expect(mergeEnv(['PATH=/usr/bin', 'LANG=C', 'EMPTY'], ['LANG=C.UTF-8', 'APP=1', 'EMPTY=now'])).toEqual([
      'PATH=/usr/bin',
      'LANG=C.UTF-8',
      'EMPTY=now',
      'APP=1',
    ]);
  });

  it('inherits everything the spec does not say, including members imgbuild does not model', () => {
    const c = mergeRuntime(base.config, {});
    expect(c).toEqual(base.config);
    expect(Object.keys(c)).toEqual(['User', 'ExposedPorts', 'Env', 'Entrypoint', 'Cmd', 'Volumes', 'WorkingDir', 'Labels', 'StopSignal', 'Healthcheck']);
  });

  it('drops an inherited Cmd when the spec sets an Entrypoint without a Cmd', () => {
    const c = mergeRuntime(base.config, { Entrypoint: ['/app'] });
    expect(c.Entrypoint).toEqual(['/app']);
    expect(c.Cmd).toBeUndefined();
  });

  it('keeps the spec Cmd with a new Entrypoint, and keeps the inherited Entrypoint with a new Cmd', () => {
    expect(mergeRuntime(base.config, { Entrypoint: ['/app'], Cmd: ['--serve'] })).toMatchObject({ Entrypoint: ['/app'], Cmd: ['--serve'] });
    expect(mergeRuntime(base.config, { Cmd: ['httpd'] })).toMatchObject({ Entrypoint: ['/docker-entrypoint.sh'], Cmd: ['httpd'] });
  });

  it('overrides WorkingDir, User and StopSignal; merges Labels, ExposedPorts and Volumes with the spec winning', () => {
    const c = mergeRuntime(base.config, {
      WorkingDir: '/app',
      User: '1000:1000',
      StopSignal: 'SIGTERM',
      Labels: { b: 'two', c: '3' },
      ExposedPorts: { '8080/tcp': {} },
      Volumes: { '/cache': {} },
    });
    expect(c).toMatchObject({ WorkingDir: '/app', User: '1000:1000', StopSignal: 'SIGTERM' });
    expect(c.Labels).toEqual({ a: '1', b: 'two', c: '3' });
    expect(Object.keys(c.ExposedPorts ?? {})).toEqual(['80/tcp', '8080/tcp']);
    expect(Object.keys(c.Volumes ?? {})).toEqual(['/data', '/cache']);
  });
});
