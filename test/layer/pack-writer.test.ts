/**
 * PackWriter when a layer is abandoned half-way: build-layer destroys the tar pack with the
 * reason (a file that changed while streamed, a vanished file), and tar-stream then destroys
 * the open entry and every queued one with that error. Those entries must not raise an
 * unhandled 'error' event (which kills the process with a stack trace); the producer reports
 * the reason itself.
 */
import tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { PackWriter } from '../../src/layer/pack-writer.js';
import type { TarHeader } from '../../src/layer/tar-header.js';

const header = (name: string, size: number): TarHeader => ({ name, size, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: new Date(0) });

/** A pack whose own 'error' is handled, as build-layer's pipeline handles it. */
function newPack() {
  const pack = tar.pack();
  pack.on('error', () => undefined);
  return pack;
}

/** Resolves after the event loop has had the chance to deliver any deferred 'error' events. */
const settle = () => new Promise((r) => setTimeout(r, 20));

describe('PackWriter on a destroyed pack', () => {
  it('a streamed entry destroyed half-way raises no unhandled error; its done rejects', async () => {
    const pack = newPack();
    pack.resume();
    const w = new PackWriter(pack);
    const { sink, done } = w.open(header('big', 1000));
    sink.write(Buffer.alloc(100));
    const closed = new Promise<void>((r) => sink.once('close', () => r()));
    pack.destroy(new Error('big changed while being read'));
    await closed;
    await expect(done).rejects.toThrow();
    await settle();
  });

  it('queued entries destroyed with the pack raise no unhandled error, and the writer fails', async () => {
    const pack = newPack();
    const w = new PackWriter(pack);
    for (let i = 0; i < 5; i++) w.add(header(`f${i}`, 10), Buffer.alloc(10, i));
    pack.destroy(new Error('f9 vanished'));
    await settle();
    await expect(w.idle()).rejects.toThrow();
  });
});
