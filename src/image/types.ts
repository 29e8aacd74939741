/**
 * The image model every source and sink speaks: OCI JSON documents, and two small read-only
 * interfaces, `Layer` and `Image`, in the manner of go-containerregistry. A layer built from a
 * plan, a layer in a registry and a layer in an OCI layout all look the same to a sink.
 */
import type { Readable } from 'node:stream';
import type { Digest } from './digest.js';

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
  urls?: string[];
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  'os.version'?: string;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** The `config` part of an OCI image configuration (what a runtime uses to start it). */
export interface RuntimeConfig {
  User?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  Volumes?: Record<string, Record<string, never>>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface ImageConfigFile {
  created?: string;
  architecture: string;
  os: string;
  'os.version'?: string;
  variant?: string;
  config: RuntimeConfig;
  rootfs: { type: 'layers'; diff_ids: Digest[] };
  history?: HistoryEntry[];
}

/** A layer: six accessors. Content is streamed, never held whole. */
export interface Layer {
  /** Digest of the compressed blob as stored and pushed. */
  digest(): Promise<Digest>;
  /** Digest of the uncompressed tar (what rootfs.diff_ids lists). */
  diffId(): Promise<Digest>;
  size(): Promise<number>;
  mediaType(): Promise<string>;
  /** The blob bytes, as stored. */
  compressed(): Promise<Readable>;
}

/** A single-platform image. */
export interface Image {
  manifest(): Promise<ImageManifest>;
  rawManifest(): Promise<Uint8Array>;
  digest(): Promise<Digest>;
  mediaType(): Promise<string>;
  configFile(): Promise<ImageConfigFile>;
  rawConfig(): Promise<Uint8Array>;
  configDigest(): Promise<Digest>;
  layers(): Promise<Layer[]>;
  /** Find a layer by blob digest (for sinks copying blobs). */
  layerByDigest(d: Digest): Promise<Layer>;
}

/** Several platform images under one index. */
export interface ImageIndexSource {
  index(): Promise<ImageIndex>;
  rawIndex(): Promise<Uint8Array>;
  digest(): Promise<Digest>;
  image(d: Digest): Promise<Image>;
}
