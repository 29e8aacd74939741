/**
 * Opening a base image that lives on this machine, from the plan's `BaseRef`: an OCI layout or a
 * docker archive. Registry bases are pulled by src/registry; scratch has no base at all.
 */
import type { BaseRef } from '../plan/types.js';
import { openArchiveImage } from './archive-source.js';
import { openLayoutImage } from './layout-source.js';
import type { Image, Platform } from './types.js';

export type LocalBaseRef = Extract<BaseRef, { kind: 'oci' | 'docker-archive' }>;

export function openLocalBase(ref: LocalBaseRef, platform: Platform): Promise<Image> {
  return ref.kind === 'oci'
    ? openLayoutImage(ref.path, { tag: ref.tag, platform })
    : openArchiveImage(ref.path, { platform });
}
