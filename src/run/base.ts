/**
 * Opening the base image of a build, one per platform, from wherever `from:` says: nothing for
 * scratch, an OCI layout, a docker archive, or a registry (blobs verified and cached in the
 * content store). A pinned digest (from the spec or the lockfile) replaces the tag, so the same
 * bytes are used whatever the tag points at today.
 */
import type { Digest } from '../image/digest.js';
import { openArchiveImage } from '../image/archive-source.js';
import { openLayoutImage } from '../image/layout-source.js';
import type { Image, Platform } from '../image/types.js';
import type { BaseRef } from '../plan/types.js';
import { RegistryClient } from '../registry/client.js';
import { parseRef, withReference } from '../registry/reference.js';
import { resolvePlatformImage, type BlobCache } from '../registry/remote-image.js';

export interface BaseOptions {
  cache: BlobCache;
  /** Manifest digest to use for this platform instead of resolving the tag (from image.lock). */
  pinned?: Digest;
  insecure?: string[];
}

export async function openBase(base: BaseRef, platform: Platform, opts: BaseOptions): Promise<Image | undefined> {
  switch (base.kind) {
    case 'scratch':
      return undefined;
    case 'oci':
      return openLayoutImage(base.path, { ...(base.tag ? { tag: base.tag } : {}), platform });
    case 'docker-archive':
      return openArchiveImage(base.path, { platform });
    case 'registry': {
      let ref = parseRef(base.ref);
      if (opts.pinned) ref = withReference(ref, opts.pinned);
      const client = RegistryClient.for(ref, opts.insecure ? { insecure: opts.insecure } : {});
      return resolvePlatformImage(client, ref, platform, { cache: opts.cache });
    }
  }
}
