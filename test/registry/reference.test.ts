/** Image reference parsing and formatting: Docker Hub normalisation, ports, digests, bad input. */
import { describe, expect, it } from 'vitest';
import { ImgbuildError } from '../../src/errors.js';
import { formatRef, isLoopbackHost, parseRef, refReference, withReference } from '../../src/registry/reference.js';

const D = `sha256:${'ab'.repeat(32)}`;

describe('parseRef', () => {
  it.each([
    ['node', { registry: 'registry-1.docker.io', repository: 'library/node' }],
    ['node:20-alpine', { registry: 'registry-1.docker.io', repository: 'library/node', tag: '20-alpine' }],
    ['docker.io/node', { registry: 'registry-1.docker.io', repository: 'library/node' }],
    ['docker.io/bitnami/redis:7', { registry: 'registry-1.docker.io', repository: 'bitnami/redis', tag: '7' }],
    ['index.docker.io/library/node', { registry: 'registry-1.docker.io', repository: 'library/node' }],
    ['user/app', { registry: 'registry-1.docker.io', repository: 'user/app' }],
    ['ghcr.io/org/team/app:1.2.3', { registry: 'ghcr.io', repository: 'org/team/app', tag: '1.2.3' }],
    ['localhost/app', { registry: 'localhost', repository: 'app' }],
    ['localhost:5000/app:dev', { registry: 'localhost:5000', repository: 'app', tag: 'dev' }],
    ['127.0.0.1:5000/a/b', { registry: '127.0.0.1:5000', repository: 'a/b' }],
    ['[::1]:5000/a', { registry: '[::1]:5000', repository: 'a' }],
    [`app@${D}`, { registry: 'registry-1.docker.io', repository: 'library/app', digest: D }],
    [`r.io:443/a/b:t@${D}`, { registry: 'r.io:443', repository: 'a/b', tag: 't', digest: D }],
    ['my.reg/a__b/c-d--e/f.g', { registry: 'my.reg', repository: 'a__b/c-d--e/f.g' }],
  ])('%s', (input, expected) => {
    expect(parseRef(input)).toEqual(expected);
  });

  it.each([
    ['', /empty/],
    ['Node', /must be lowercase/],
    ['app:', /tag ""/],
    ['app:-bad', /tag "-bad"/],
    ['a//b', /empty path component/],
    ['a/b_/c', /may only contain/],
    ['app@sha256:abc', /64 lowercase hex/],
    [`app@sha512:${'a'.repeat(128)}`, /only sha256/],
    ['ex ample.com/a', /not a valid registry|may only contain/],
    ['host:99999999/a', /not a valid registry/],
  ])('rejects %j with a usage error', (input, why) => {
    let err: unknown;
    try {
      parseRef(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ImgbuildError);
    expect((err as ImgbuildError).kind).toBe('usage');
    expect((err as ImgbuildError).message).toMatch(why);
    expect((err as ImgbuildError).hint).toMatch(/\[host\[:port\]\/\]name/);
  });
});

describe('formatting and helpers', () => {
  it('formats the normalised reference and round-trips it', () => {
    const r = parseRef(`node:20@${D}`);
    expect(formatRef(r)).toBe(`registry-1.docker.io/library/node:20@${D}`);
    expect(parseRef(formatRef(r))).toEqual(r);
  });
  it('names the digest before the tag, and latest when there is neither', () => {
    expect(refReference(parseRef(`a:1@${D}`))).toBe(D);
    expect(refReference(parseRef('a:1'))).toBe('1');
    expect(refReference(parseRef('a'))).toBe('latest');
    expect(withReference(parseRef('x.io/a:1'), D)).toEqual({ registry: 'x.io', repository: 'a', digest: D });
  });
  it('treats only loopback hosts as plain-http by default', () => {
    expect(['localhost:5000', '127.0.0.1:1', '[::1]:5000', 'localhost'].map(isLoopbackHost)).toEqual([true, true, true, true]);
    expect(['127.0.0.2:5000', 'localhost.evil.com', 'ghcr.io'].map(isLoopbackHost)).toEqual([false, false, false]);
  });
});
