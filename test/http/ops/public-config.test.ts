// GET /config: Quay's public shape, whitelisted keys only, never a secret.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startTestApp } from '../../support/app.ts';
import { call } from '../api/client.ts';

test('GET /config has Quay\'s public shape with features as booleans', async () => {
  const t = await startTestApp({ REGISTRY_TITLE: 'Acme Registry', CONTACT_INFO: ['mailto:ops@example.com'], FEATURE_PROXY_CACHE: true });
  try {
    const r = await call(t, 'GET', '/config');
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('access-control-allow-origin'), '*');
    const b = r.body;
    assert.deepEqual(Object.keys(b).sort(), ['account_recovery_mode', 'config', 'external_login', 'features', 'oauth', 'registry_state', 'version_number']);
    for (const [k, v] of Object.entries(b.features)) assert.equal(typeof v, 'boolean', k);
    assert.equal(b.features.USER_CREATION, true);
    assert.equal(b.features.PROXY_CACHE, true);
    assert.equal(b.features.MAILING, false);
    const c = b.config;
    assert.equal(c.SERVER_HOSTNAME, t.host);
    assert.equal(c.PREFERRED_URL_SCHEME, 'http');
    assert.equal(c.AUTHENTICATION_TYPE, 'Database');
    assert.equal(c.REGISTRY_TITLE, 'Acme Registry');
    assert.equal(c.REGISTRY_TITLE_SHORT, 'Acme Registry');
    assert.equal(c.REGISTRY_STATE, 'normal');
    assert.deepEqual(c.CONTACT_INFO, ['mailto:ops@example.com']);
    assert.deepEqual(c.TAG_EXPIRATION_OPTIONS, ['0s', '1d', '1w', '2w', '4w']);
    assert.equal(c.FEATURE_PROXY_CACHE, true);
    assert.equal(c.FEATURE_REPO_MIRROR, false);
    assert.equal(b.registry_state, 'normal');
    assert.equal(b.account_recovery_mode, false);
    assert.match(b.version_number, /^Quayside \d+\.\d+\.\d+/);
    const pre = await fetch(`${t.url}/config`, { method: 'OPTIONS' });
    assert.equal(pre.status, 200);
    assert.equal(pre.headers.get('access-control-allow-origin'), '*');
  } finally {
    await t.close();
  }
});

test('GET /config reports the configured SERVER_HOSTNAME and readonly state', async () => {
  const t = await startTestApp({ SERVER_HOSTNAME: 'registry.example.com:8443', PREFERRED_URL_SCHEME: 'https', REGISTRY_STATE: 'readonly', ENTERPRISE_LOGO_URL: '/logo.svg' });
  try {
    const b = (await call(t, 'GET', '/config')).body;
    assert.equal(b.config.SERVER_HOSTNAME, 'registry.example.com:8443');
    assert.equal(b.config.PREFERRED_URL_SCHEME, 'https');
    assert.equal(b.config.REGISTRY_STATE, 'readonly');
    assert.equal(b.registry_state, 'readonly');
    assert.equal(b.config.ENTERPRISE_LOGO_URL, '/logo.svg');
    assert.deepEqual(b.config.BRANDING, { logo: '/logo.svg' });
  } finally {
    await t.close();
  }
});

test('GET /config never reveals secrets, connection strings or credentials', async () => {
  const secrets = {
    DATABASE_SECRET_KEY: 'dbsecret-4f9a7c1e2b',
    SECRET_KEY: 'appsecret-8d3e6b0a5c',
    MAIL_PASSWORD: 'mailpass-1a2b3c4d5e',
    SECURITY_SCANNER_V4_PSK: 'psk-9e8d7c6b5a',
    DISTRIBUTED_STORAGE_CONFIG: {
      s3: ['S3Storage', { s3_bucket: 'bucket-xyz', s3_access_key: 'AKIAEXAMPLEKEY123', s3_secret_key: 's3secret-0f1e2d3c4b', host: 'minio.invalid', port: 9000 }],
    },
  };
  const t = await startTestApp(secrets);
  try {
    const text = (await call(t, 'GET', '/config')).text;
    for (const needle of ['dbsecret-4f9a7c1e2b', 'appsecret-8d3e6b0a5c', 'mailpass-1a2b3c4d5e', 'psk-9e8d7c6b5a', 'AKIAEXAMPLEKEY123', 's3secret-0f1e2d3c4b', 'bucket-xyz', 'minio.invalid', t.dbUri, 'DB_URI', 'SECRET_KEY', 'DATABASE_SECRET']) {
      assert.ok(!text.includes(needle), `leaked ${needle}`);
    }
    assert.ok(!text.includes(t.app.services.config.databaseSecretKey));
    assert.ok(!text.includes(t.app.services.config.secretKey));
  } finally {
    await t.close();
  }
});
