// GET /api/v1/superuser/config: Quay's configuration dump, and the guarantee that no secret leaves
// (config.yaml values at any depth, generated secrets, URLs with passwords, the environment).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createWorld, PASSWORD, type World } from '../../support/world.ts';
import { json } from '../../support/api-expect.ts';
import { obfuscate } from '../../../src/model/superuser-config.ts';
import { Browser } from './browser.ts';
import { isApiError } from './client.ts';

const SECRETS = {
  mail: 'mail-secret-1234', dbKey: 'database-secret-key-value', flask: 'flask-secret-key-value', s3: 'AKIAEXAMPLEKEY00', es: 'es-secret-value',
  psk: 'scanner-psk-value', gh: 'github-client-secret', ldap: 'ldap-admin-password', redis: 'redis-password-value', url: 'password-in-url',
  envPass: 'env-secret-pass', envUrl: 'env-url-password', envToken: 'env-token-value',
};

let w: World;
before(async () => {
  process.env.QUAYSIDE_FAKE_SMTP_PASSWORD = SECRETS.envPass;
  process.env.FAKE_DATABASE_URL = `postgresql://quay:${SECRETS.envUrl}@db.example.com/quay`;
  process.env.FAKE_API_TOKEN = SECRETS.envToken;
  w = await createWorld({
    FEATURE_SUPERUSER_CONFIGDUMP: true,
    MAIL_SERVER: 'smtp.example.com', MAIL_USERNAME: 'quay', MAIL_PASSWORD: SECRETS.mail,
    DATABASE_SECRET_KEY: SECRETS.dbKey, SECRET_KEY: SECRETS.flask,
    LOGS_MODEL_CONFIG: { elasticsearch_config: { host: 'es.example.com', aws_region: 'us-east-1', access_key: SECRETS.s3, secret_key: SECRETS.es } },
    SECURITY_SCANNER_V4_PSK: SECRETS.psk,
    GITHUB_LOGIN_CONFIG: { CLIENT_ID: 'gh-id', CLIENT_SECRET: SECRETS.gh },
    LDAP_ADMIN_PASSWD: SECRETS.ldap,
    BUILDLOGS_REDIS: { host: 'redis.example.com', port: 6379, password: SECRETS.redis },
    SOME_CALLBACK_URL: `https://hook:${SECRETS.url}@hooks.example.com/x`,
    SOME_UNKNOWN_SETTING: 'plain value',
  });
});
after(async () => {
  await w?.close();
  delete process.env.QUAYSIDE_FAKE_SMTP_PASSWORD;
  delete process.env.FAKE_DATABASE_URL;
  delete process.env.FAKE_API_TOKEN;
});

describe('GET /api/v1/superuser/config', () => {
  test("Quay's four sections; known keys in config, unknown ones in warning", async () => {
    const r = await json(await w.api('GET', '/superuser/config', { caller: 'superuser', scopes: ['super:user'] }));
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.body).sort(), ['config', 'env', 'schema', 'warning']);
    const { config, warning, env, schema } = r.body;
    assert.equal(config.AUTHENTICATION_TYPE, 'Database');
    assert.equal(config.MAIL_SERVER, 'smtp.example.com');
    assert.deepEqual(config.SUPER_USERS, ['root']);
    assert.equal(config.FEATURE_SUPERUSER_CONFIGDUMP, true);
    assert.equal(config.FEATURE_SUPER_USERS, true, 'defaulted values are included');
    assert.equal(config.CREATE_PRIVATE_REPO_ON_PUSH, true);
    assert.equal(warning.SOME_UNKNOWN_SETTING, 'plain value');
    assert.equal(config.SOME_UNKNOWN_SETTING, undefined);
    assert.equal(env.PATH, process.env.PATH);
    assert.equal(typeof schema.description, 'string');
    assert.ok(Array.isArray(schema.required));
    assert.deepEqual(schema.properties.SERVER_HOSTNAME, { type: 'string' });
  });

  test('no secret leaves: stars and the length, at any depth, in config, warning and env', async () => {
    const r = await json(await w.api('GET', '/superuser/config', { caller: 'superuser' }));
    const text = JSON.stringify(r.body);
    const c = w.t.config;
    for (const secret of [...Object.values(SECRETS), c.databaseSecretKey, c.secretKey, w.t.dbUri]) {
      assert.ok(!text.includes(secret), `leaked ${secret}`);
    }
    const { config, warning, env } = r.body;
    assert.equal(config.MAIL_PASSWORD, '********** (16)');
    assert.equal(obfuscate('password'), '******** (8)', "Quay's example: eight stars for eight characters");
    assert.equal(config.DATABASE_SECRET_KEY, obfuscate(SECRETS.dbKey));
    assert.equal(config.SECRET_KEY, obfuscate(SECRETS.flask));
    assert.equal(config.DB_URI, obfuscate(w.t.dbUri));
    assert.deepEqual(config.LOGS_MODEL_CONFIG.elasticsearch_config, {
      host: 'es.example.com', aws_region: 'us-east-1', access_key: obfuscate(SECRETS.s3), secret_key: obfuscate(SECRETS.es),
    });
    assert.equal(config.SECURITY_SCANNER_V4_PSK, obfuscate(SECRETS.psk));
    assert.deepEqual(config.GITHUB_LOGIN_CONFIG, { CLIENT_ID: 'gh-id', CLIENT_SECRET: obfuscate(SECRETS.gh) });
    assert.deepEqual(config.BUILDLOGS_REDIS, { host: 'redis.example.com', port: 6379, password: obfuscate(SECRETS.redis) });
    assert.equal(warning.LDAP_ADMIN_PASSWD, obfuscate(SECRETS.ldap));
    assert.equal(warning.SOME_CALLBACK_URL, `https://hook:${obfuscate(SECRETS.url)}@hooks.example.com/x`);
    assert.equal(env.QUAYSIDE_FAKE_SMTP_PASSWORD, obfuscate(SECRETS.envPass));
    assert.equal(env.FAKE_DATABASE_URL, `postgresql://quay:${obfuscate(SECRETS.envUrl)}@db.example.com/quay`);
    assert.equal(env.FAKE_API_TOKEN, obfuscate(SECRETS.envToken));
  });

  test('superusers only (not the read-only ones), with a fresh login', async () => {
    for (const caller of ['readonlySuperuser', 'orgadmin'] as const) {
      const r = await json(await w.api('GET', '/superuser/config', { caller }));
      assert.equal(r.status, 403, caller);
      assert.ok(isApiError(r.body, 403, 'insufficient_scope', w.t.url));
    }
    assert.equal((await w.api('GET', '/superuser/config', { caller: 'anonymous' })).status, 401);
    const b = new Browser(w.t.url);
    assert.equal((await b.signIn('root', PASSWORD)).status, 200);
    assert.equal((await b.request('GET', '/api/v1/superuser/config')).status, 200);
    await w.t.app.services.db.updateTable('sessions').set({ login_time: Date.now() - 11 * 60 * 1000 }).where('user_id', '=', w.users.root.id).execute();
    const stale = await b.request('GET', '/api/v1/superuser/config');
    assert.equal(stale.status, 401);
    assert.ok(isApiError(stale.body, 401, 'fresh_login_required', w.t.url));
  });
});

test('without FEATURE_SUPERUSER_CONFIGDUMP even a superuser is refused', async () => {
  const other = await createWorld();
  try {
    const r = await json(await other.api('GET', '/superuser/config', { caller: 'superuser' }));
    assert.equal(r.status, 403);
    assert.ok(isApiError(r.body, 403, 'insufficient_scope', other.t.url));
  } finally {
    await other.close();
  }
});
