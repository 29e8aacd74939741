/**
 * A proxy to a test registry that cuts the *response* of chosen requests mid-body (the shared
 * flaky proxy cuts request bodies only): it forwards the status and headers, then some bytes,
 * then drops the connection, the way a registry or load balancer dying mid-download looks.
 */
import { once } from 'node:events';
import http from 'node:http';
import type net from 'node:net';

export interface CutProxy {
  host: string;
  /** Responses cut so far, as "METHOD path". */
  cut: string[];
  stop(): Promise<void>;
}

/** Cut the next `times` responses to GETs matching `path` after `afterBytes` bytes of body. */
export async function startCutProxy(target: string, rule: { path: RegExp; afterBytes: number; times: number }): Promise<CutProxy> {
  const cut: string[] = [];
  const [hostname, port] = target.split(':');
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const cutThis = req.method === 'GET' && rule.times > 0 && rule.path.test(path);
    if (cutThis) rule.times--;
    const up = http.request({ hostname, port: Number(port), method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      let sent = 0;
      ur.on('data', (c: Buffer) => {
        if (cutThis && sent + c.length >= rule.afterBytes) {
          res.write(c.subarray(0, rule.afterBytes - sent));
          cut.push(`${req.method} ${path}`);
          ur.destroy();
          res.socket?.destroy();
          return;
        }
        sent += c.length;
        res.write(c);
      });
      ur.on('end', () => res.end());
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    host: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    cut,
    stop: async () => {
      server.closeAllConnections();
      server.close();
    },
  };
}
