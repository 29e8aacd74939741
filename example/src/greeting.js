// The greeting, read from the config file the image spec writes to /etc/hello.conf.
import { readFileSync } from 'node:fs';

export function greeting(file = process.env.HELLO_CONF ?? '/etc/hello.conf') {
  try {
    const line = readFileSync(file, 'utf8').split('\n').find((l) => l.startsWith('greeting='));
    return line ? line.slice('greeting='.length) : 'hello';
  } catch {
    return 'hello';
  }
}
