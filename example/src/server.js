// A tiny web server: `node src/server.js` serves public/ and says hello on /hello.
// With --once it prints the greeting and exits (handy to check that the image runs).
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { greeting } from './greeting.js';

const root = new URL('../public/', import.meta.url).pathname;
const types = { '.html': 'text/html', '.css': 'text/css' };

if (process.argv.includes('--once')) {
  console.log(`${greeting()} from ${process.env.NODE_ENV ?? 'development'}`);
  process.exit(0);
}

createServer(async (req, res) => {
  if (req.url === '/hello') return res.end(`${greeting()}\n`);
  const path = join(root, normalize(req.url === '/' ? 'index.html' : req.url ?? '').replace(/^(\.\.[/\\])+/, ''));
  try {
    res.writeHead(200, { 'content-type': types[extname(path)] ?? 'application/octet-stream' });
    res.end(await readFile(path));
  } catch {
    res.writeHead(404).end('not found\n');
  }
}).listen(Number(process.env.PORT ?? 8080));
