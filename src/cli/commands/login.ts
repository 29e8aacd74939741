/** `imgbuild login <host>`: store registry credentials where Docker keeps them. */
import type { Command } from 'commander';
import { usageError } from '../../errors.js';
import { withRegistryOptions } from '../options.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export function registerLogin(program: Command): void {
  withRegistryOptions(program
    .command('login')
    .argument('<host>', 'registry host, e.g. ghcr.io or 127.0.0.1:5000')
    .description('check credentials with a registry, then save them in the Docker config file ($DOCKER_CONFIG or ~/.docker)')
    .requiredOption('-u, --username <user>', 'user name')
    .option('--password-stdin', 'read the password (or token) from standard input'))
    .action(async (host: string, flags: { username: string; passwordStdin?: boolean; insecureRegistry?: string[] }) => {
      if (!flags.passwordStdin) throw usageError('pass the password on standard input with --password-stdin', 'e.g. echo "$TOKEN" | imgbuild login ghcr.io -u me --password-stdin');
      const [{ loginHost, saveLogin }, { RegistryClient }] = await Promise.all([import('../../registry/credentials.js'), import('../../registry/client.js')]);
      const registry = loginHost(host);
      const password = await readStdin();
      if (!password) throw usageError('no password on standard input');
      // As docker login does: credentials the registry refuses are not saved, to fail a push later.
      const client = RegistryClient.for({ registry, repository: '' }, { credentials: async () => ({ kind: 'basic', username: flags.username, password }), insecure: flags.insecureRegistry });
      await client.checkLogin();
      const file = await saveLogin(registry, flags.username, password);
      process.stdout.write(`saved credentials for ${registry} in ${file}\n`);
    });
}
