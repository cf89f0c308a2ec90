// The quayside command: serve (default), config check, db migrate, user create, org create.
// Exit codes: 0 success; 1 a command failed (bad input, refused operation, invalid config file
// for `config check`); 2 `serve` could not start (configuration or database problem).
import { Command, InvalidArgumentError } from 'commander';
import pino from 'pino';
import { ConfigError, loadConfig, type LoadOptions, type QuaysideConfig } from '../config/config.ts';
import type { App } from '../server/app.ts';
import type { Services } from '../model/context.ts';
import { DomainError } from '../model/errors.ts';

// The server, database and model modules (storage SDKs included) load only for the commands
// that need them, so `config check` and `--help` stay instant.
const server = () => import('../server/app.ts');
const database = () => import('../db/db.ts');
const accounts = () => import('../model/accounts.ts');
const logs = () => import('../model/logs.ts');

/** Set once `serve` is listening: the process then lives until a signal stops the server. */
let serving = false;

class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

interface CommonOpts { config?: string; dataDir?: string }

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('must be a TCP port (0-65535)');
  return n;
}

function config(opts: CommonOpts & { port?: number; host?: string }, extra: Partial<LoadOptions> = {}): QuaysideConfig {
  return loadConfig({ file: opts.config, dataDir: opts.dataDir, port: opts.port, host: opts.host, ...extra });
}

/** Runs `fn` with the model services (no HTTP), closing everything afterwards. */
async function withServices<T>(opts: CommonOpts, fn: (s: Services) => Promise<T>): Promise<T> {
  const cfg = config(opts);
  const log = pino({ level: 'warn' }, pino.destination(2));
  const { services, handle } = await (await server()).openServices(cfg, log);
  try {
    return await fn(services);
  } finally {
    await services.storage.close?.();
    await handle.close();
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(Buffer.from(c as Uint8Array));
  // `echo pw | …` and heredocs end with a newline that is not part of the password.
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

async function serve(opts: CommonOpts & { port?: number; host?: string }): Promise<void> {
  let app: App;
  try {
    const cfg = config(opts);
    app = await (await server()).buildApp(cfg);
  } catch (e) {
    // ConfigError names the key; database failures come from openServices with the redacted URI.
    throw new CliError(e instanceof ConfigError ? e.message : `cannot start: ${(e as Error).message}`, 2);
  }
  let address: string;
  try {
    address = await app.listen();
  } catch (e) {
    await app.close().catch(() => {});
    throw new CliError(`cannot listen: ${(e as Error).message}`, 2);
  }
  process.stdout.write(`Quayside listening on ${address}\n`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      process.stderr.write(`quayside: ${signal} again, exiting without waiting\n`);
      process.exit(1);
    }
    stopping = true;
    process.stderr.write(`quayside: ${signal} received, finishing in-flight requests\n`);
    app.close().then(
      () => process.exit(0),
      (e: Error) => {
        process.stderr.write(`quayside: error while shutting down: ${e.message}\n`);
        process.exit(1);
      },
    );
  };
  serving = true;
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

export function program(): Command {
  const prog = new Command('quayside')
    .description('Quayside: a Quay-compatible container registry')
    .showHelpAfterError()
    .exitOverride();

  const serveOpts = (c: Command) => c
    .option('-p, --port <n>', 'TCP port to listen on (env PORT, default 8080)', port)
    .option('--host <h>', 'address to bind (default 0.0.0.0)')
    .option('-d, --data-dir <dir>', 'data directory (env QUAYSIDE_DATA_DIR, default ./data)')
    .option('-c, --config <file>', 'Quay config.yaml (env QUAYSIDE_CONFIG)');

  serveOpts(prog.command('serve', { isDefault: true }).description('run the registry (the default command)'))
    .action(serve);

  const cfgCmd = prog.command('config').description('configuration tools');
  cfgCmd.command('check <file>').description('validate a config.yaml without starting anything')
    .option('-d, --data-dir <dir>', 'data directory the config would be used with')
    .action((file: string, opts: { dataDir?: string }) => {
      const warnings: string[] = [];
      try {
        loadConfig({ file, dataDir: opts.dataDir, persistSecrets: false, warn: (m) => warnings.push(m) });
      } catch (e) {
        if (e instanceof ConfigError) throw new CliError(e.message);
        throw e;
      }
      for (const w of warnings) process.stderr.write(`quayside: warning: ${w}\n`);
      process.stdout.write(`OK: ${file} is valid\n`);
    });

  const dbCmd = prog.command('db').description('database tools');
  dbCmd.command('migrate').description('apply pending database migrations')
    .option('-d, --data-dir <dir>', 'data directory (env QUAYSIDE_DATA_DIR)')
    .option('-c, --config <file>', 'Quay config.yaml (env QUAYSIDE_CONFIG)')
    .action(async (opts: CommonOpts) => {
      const cfg = config(opts);
      const { openDatabase, migrate } = await database();
      const { redactUri } = await server();
      const handle = openDatabase(cfg.dbUri);
      try {
        const applied = await migrate(handle);
        process.stdout.write(applied.length ? `applied migrations: ${applied.join(', ')}\n` : `database ${redactUri(cfg.dbUri)} is up to date\n`);
      } catch (e) {
        throw new CliError(`cannot migrate ${redactUri(cfg.dbUri)}: ${(e as Error).message}`);
      } finally {
        await handle.close();
      }
    });

  const userCmd = prog.command('user').description('user accounts');
  userCmd.command('create <name>').description('create a user (the password is read from stdin)')
    .option('--email <email>', 'email address')
    .option('--password-stdin', 'read the password from standard input')
    .option('--superuser', 'make the user a superuser')
    .option('-d, --data-dir <dir>', 'data directory (env QUAYSIDE_DATA_DIR)')
    .option('-c, --config <file>', 'Quay config.yaml (env QUAYSIDE_CONFIG)')
    .action(async (name: string, opts: CommonOpts & { email?: string; passwordStdin?: boolean; superuser?: boolean }) => {
      if (!opts.passwordStdin) throw new CliError('a password is required: pipe it in with --password-stdin');
      const password = await readStdin();
      const { createUser } = await accounts();
      const { logAction } = await logs();
      await withServices(opts, async (s) => {
        const user = await createUser(s, { username: name, password, email: opts.email ?? null, superuser: opts.superuser === true });
        await logAction(s, 'user_create', { namespaceId: user.id, metadata: { email: opts.email ?? null, username: name, source: 'cli' } });
        process.stdout.write(`created user ${user.username}${opts.superuser ? ' (superuser)' : ''}\n`);
      });
    });

  const orgCmd = prog.command('org').description('organizations');
  orgCmd.command('create <name>').description('create an organization owned by an existing user')
    .requiredOption('--owner <user>', 'user who becomes a member of the owners team')
    .option('--email <email>', 'organization email address')
    .option('-d, --data-dir <dir>', 'data directory (env QUAYSIDE_DATA_DIR)')
    .option('-c, --config <file>', 'Quay config.yaml (env QUAYSIDE_CONFIG)')
    .action(async (name: string, opts: CommonOpts & { owner: string; email?: string }) => {
      const { createOrganization, findUser } = await accounts();
      const { logAction } = await logs();
      await withServices(opts, async (s) => {
        const owner = await findUser(s, opts.owner);
        if (!owner || owner.kind !== 'user') throw new CliError(`no such user: ${opts.owner}`);
        const org = await createOrganization(s, name, owner, opts.email ?? null);
        await logAction(s, 'org_create', { namespaceId: org.id, metadata: { email: opts.email ?? null, namespace: name, owner: owner.username, source: 'cli' } });
        process.stdout.write(`created organization ${org.username} (owner: ${owner.username})\n`);
      });
    });

  return prog;
}

export async function main(argv: string[]): Promise<number> {
  const prog = program();
  try {
    await prog.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    const err = e as { code?: string; exitCode?: number; message?: string };
    if (typeof err.code === 'string' && err.code.startsWith('commander.')) {
      // Commander already printed usage or the error; help and version are successes.
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help' ? 0 : (err.exitCode ?? 1);
    }
    if (e instanceof CliError) {
      process.stderr.write(`quayside: ${e.message}\n`);
      return e.exitCode;
    }
    if (e instanceof ConfigError || e instanceof DomainError) {
      process.stderr.write(`quayside: ${(e as Error).message}\n`);
      return 1;
    }
    process.stderr.write(`quayside: ${(e as Error).message ?? String(e)}\n`);
    return 1;
  }
}

if (import.meta.main) {
  const code = await main(process.argv.slice(2));
  // `serve` keeps the process alive through its server; everything else exits with its status.
  if (code !== 0 || !serving) process.exit(code);
}
