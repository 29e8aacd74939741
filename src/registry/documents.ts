/**
 * Reading manifests and indexes that came from a registry, which is input like any other: the
 * media type the registry named must fit, and the JSON is checked by the same strict parser as
 * every other source's (src/image/parse.ts) before anything uses it.
 */
import { ImgbuildError } from '../errors.js';
import { isIndexMediaType, isManifestMediaType } from '../image/media-types.js';
import { parseIndex as parseIndexJson, parseManifest as parseManifestJson } from '../image/parse.js';
import type { ImageIndex, ImageManifest } from '../image/types.js';

function wrongType(what: string, mediaType: string, want: string): never {
  throw new ImgbuildError('registry', `${what} is malformed: media type ${mediaType} is not ${want}`, 'the registry holds an image imgbuild cannot read');
}

export function parseManifest(bytes: Uint8Array, mediaType: string, what: string): ImageManifest {
  if (!isManifestMediaType(mediaType)) wrongType(what, mediaType, 'an image manifest');
  return { ...parseManifestJson(bytes, what), mediaType };
}

export function parseIndex(bytes: Uint8Array, mediaType: string, what: string): ImageIndex {
  if (!isIndexMediaType(mediaType)) wrongType(what, mediaType, 'an image index');
  return { ...parseIndexJson(bytes, what), mediaType };
}
