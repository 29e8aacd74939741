/** Small tars made in memory with tar-stream, for tests that need hand-made (even hostile) layers. */
import tar from 'tar-stream';

export interface TarEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  linkname?: string;
  body?: string;
  mode?: number;
  uid?: number;
  gid?: number;
}

export async function packTar(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const { body, ...header } of entries) pack.entry({ ...header, type: header.type ?? 'file' }, body ?? '');
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}
