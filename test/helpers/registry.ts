/**
 * A real registry for tests: CNCF Distribution (`docker-registry serve`) on 127.0.0.1 with a
 * free port, a temp storage dir, optional htpasswd auth, and its log captured to a file (read
 * back to count blob upload requests). Also a fault-injecting HTTP proxy to put in front of it,
 * which answers chosen requests with an error status or cuts their connection mid-body.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface RegistryAuth {
  user: string;
  password: string;
}

export interface RequestLine {
  method: string;
  path: string;
  status: number;
}

export interface TestRegistry {
  host: string;
  dir: string;
  stop(): Promise<void>;
  /** Requests that carried blob data (PATCH and PUT to /blobs/uploads/) so far. */
  uploadRequests(): Promise<number>;
  /** Every request the registry has answered so far (see `settled`). */
  requests(): Promise<RequestLine[]>;
}

export async function freePort(): Promise<number> {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as net.AddressInfo).port;
  srv.close();
  await once(srv, 'close');
  return port;
}

function configYaml(dir: string, port: number, htpasswd?: string): string {
  const auth = htpasswd ? `auth:\n  htpasswd:\n    realm: test-realm\n    path: ${htpasswd}\n` : '';
  return `version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: ${path.join(dir, 'storage')}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:${port}
  secret: imgbuild-test-secret
${auth}`;
}

/** Start a registry; resolves once it answers /v2/. */
export async function startRegistry(opts: { auth?: RegistryAuth } = {}): Promise<TestRegistry> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'imgbuild-registry-'));
  let htpasswd: string | undefined;
  if (opts.auth) {
    htpasswd = path.join(dir, 'htpasswd');
    const line = execFileSync('htpasswd', ['-Bbn', opts.auth.user, opts.auth.password], { encoding: 'utf8' });
    writeFileSync(htpasswd, line.trim() + '\n');
  }
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const logFile = path.join(dir, `registry-${attempt}.log`);
    writeFileSync(path.join(dir, 'config.yml'), configYaml(dir, port, htpasswd));
    const fd = openSync(logFile, 'a');
    const child = spawn('docker-registry', ['serve', path.join(dir, 'config.yml')], { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    const host = `127.0.0.1:${port}`;
    if (await waitReady(host, child)) return handle(host, dir, child, logFile);
    child.kill('SIGKILL');
    // Another process may have taken the port between our probe and the registry's bind.
    if (attempt >= 2) throw new Error(`docker-registry did not start:\n${readFileSync(logFile, 'utf8').slice(-2000)}`);
  }
}

async function waitReady(host: string, child: ChildProcess): Promise<boolean> {
  for (let i = 0; i < 150; i++) {
    if (child.exitCode !== null) return false;
    const status = await new Promise<number>((resolve) => {
      http.get(`http://${host}/v2/`, (res) => { res.resume(); resolve(res.statusCode ?? 0); }).on('error', () => resolve(0));
    });
    if (status === 200 || status === 401) return true;
    await sleep(100);
  }
  return false;
}

function handle(host: string, dir: string, child: ChildProcess, logFile: string): TestRegistry {
  const logged = (): RequestLine[] =>
    [...readFileSync(logFile, 'utf8').matchAll(/"([A-Z]+) (\/v2\/[^ "]*) HTTP\/[0-9.]+" (\d{3})/g)].map((m) => ({
      method: m[1]!, path: m[2]!, status: Number(m[3]),
    }));
  // The registry writes a request's access-log line after it has sent the response, so a client
  // that has just finished may be ahead of the log (seen once, under load). A request of our
  // own, sent now, is logged after every request answered before it.
  let markers = 0;
  const settled = async (): Promise<void> => {
    const marker = `/v2/?settled=${++markers}`;
    await new Promise<void>((resolve) => {
      http.get(`http://${host}${marker}`, (res) => res.resume().on('end', resolve)).on('error', () => resolve());
    });
    for (let i = 0; i < 250 && !readFileSync(logFile, 'utf8').includes(marker); i++) await sleep(20);
  };
  const requests = async (): Promise<RequestLine[]> => {
    await settled();
    return logged();
  };
  return {
    host,
    dir,
    requests,
    uploadRequests: async () => (await requests()).filter((r) => (r.method === 'PUT' || r.method === 'PATCH') && r.path.includes('/blobs/uploads/')).length,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await Promise.race([once(child, 'exit'), sleep(5000)]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A fault to inject, `times` times, into requests matching `method` and `path`, after letting
 * `skip` matching requests through untouched.
 */
export interface FaultRule {
  method?: string;
  path?: RegExp;
  skip?: number;
  times: number;
  fault: { status: number; retryAfter?: string } | { cutAfterBytes: number } | { corruptResponse: true };
}

export interface FlakyProxy {
  host: string;
  /** Faults injected so far, in order, as "METHOD path -> what". */
  injected: string[];
  stop(): Promise<void>;
}

/** A proxy to `target` (host:port) that injects `rules`' faults, then forwards everything else. */
export async function startFlakyProxy(target: string, rules: FaultRule[]): Promise<FlakyProxy> {
  const injected: string[] = [];
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    const rule = rules.find((r) => r.times > 0 && (!r.method || r.method === req.method) && (!r.path || r.path.test(url.split('?')[0]!)));
    if (rule?.skip) rule.skip--;
    else if (rule) return inject(target, rule, req, res, injected);
    forward(target, req, res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    injected,
    stop: async () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

function inject(target: string, rule: FaultRule, req: http.IncomingMessage, res: http.ServerResponse, log: string[]) {
  rule.times--;
  const f = rule.fault;
  const what = 'status' in f ? String(f.status) : 'cutAfterBytes' in f ? `cut after ${f.cutAfterBytes}` : 'corrupt';
  log.push(`${req.method} ${(req.url ?? '/').split('?')[0]} -> ${what}`);
  if ('status' in f) return failWith(req, res, f.status, f.retryAfter);
  if ('cutAfterBytes' in f) return cutAfter(req, f.cutAfterBytes);
  forward(target, req, res, true);
}

/** Forward one request to `target` (host:port) and stream the answer back. */
export function forward(target: string, req: http.IncomingMessage, res: http.ServerResponse, corrupt = false) {
  const [hostname, port] = target.split(':');
  const up = http.request({ hostname, port: Number(port), method: req.method, path: req.url, headers: req.headers }, (ur) => {
    res.writeHead(ur.statusCode ?? 502, ur.headers);
    let first = corrupt;
    ur.on('data', (c: Buffer) => {
      // Flip one bit of the first byte: same length, different content.
      if (first && c.length > 0) (c[0] = c[0]! ^ 1), (first = false);
      res.write(c);
    });
    ur.on('end', () => res.end());
  });
  up.on('error', () => res.destroy());
  req.pipe(up);
}

function failWith(req: http.IncomingMessage, res: http.ServerResponse, status: number, retryAfter?: string) {
  req.resume();
  req.on('end', () => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (retryAfter !== undefined) headers['retry-after'] = retryAfter;
    res.writeHead(status, headers);
    res.end(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: 'injected fault' }] }));
  });
}

function cutAfter(req: http.IncomingMessage, bytes: number) {
  let seen = 0;
  req.on('data', (c: Buffer) => {
    seen += c.length;
    if (seen >= bytes) req.socket.destroy();
  });
  req.on('end', () => req.socket.destroy());
}
