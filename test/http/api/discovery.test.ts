// GET /api/v1/discovery and GET /api/v1/error/{error_type}, plus the envelope's error links.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp } from '../../support/app.ts';
import { call, isApiError } from './client.ts';

describe('GET /api/v1/discovery', () => {
  let t: TestApp;
  before(async () => { t = await startTestApp(); });
  after(async () => { await t?.close(); });

  test('is a Swagger 2.0 document of the registered routes with Quay nicknames', async () => {
    const r = await call(t, 'GET', '/api/v1/discovery');
    assert.equal(r.status, 200);
    const d = r.body;
    assert.equal(d.swagger, '2.0');
    assert.equal(d.host, t.host);
    assert.equal(d.basePath, '/');
    assert.deepEqual(d.schemes, ['http']);
    assert.equal(d.info.version, 'v1');
    const oauth = d.securityDefinitions.oauth2_implicit;
    assert.equal(oauth.type, 'oauth2');
    assert.equal(oauth.flow, 'implicit');
    assert.equal(oauth.authorizationUrl, `http://${t.host}/oauth/authorize`);
    assert.deepEqual(Object.keys(oauth.scopes).sort(), ['org:admin', 'repo:admin', 'repo:create', 'repo:read', 'repo:write', 'super:user', 'user:admin', 'user:read']);

    const me = d.paths['/api/v1/user/'];
    assert.equal(me['x-tag'], 'user');
    assert.equal(me.get.operationId, 'getLoggedInUser');
    assert.deepEqual(me.get.security, [{ oauth2_implicit: ['user:read'] }]);
    assert.deepEqual(me.get.tags, ['user']);
    assert.equal(me.get.responses['200'].schema.$ref, '#/definitions/UserView');
    assert.equal(me.get.responses['401'].schema.$ref, '#/definitions/ApiError');
    assert.ok(d.definitions.UserView.properties.username);
    assert.deepEqual(d.definitions.ApiError.required, ['status', 'type', 'title']);

    assert.equal(d.paths['/api/v1/discovery'].get.operationId, 'discovery');
    const internalParam = d.paths['/api/v1/discovery'].get.parameters.find((p: any) => p.name === 'internal');
    assert.deepEqual(internalParam, { name: 'internal', in: 'query', required: false, description: 'Whether to include internal APIs.', type: 'boolean' });

    const err = d.paths['/api/v1/error/{error_type}'];
    assert.equal(err.get.operationId, 'getErrorDescription');
    assert.deepEqual(err.parameters, [{ name: 'error_type', in: 'path', required: true, description: 'The error code identifying the type of error.', type: 'string' }]);

    // Internal operations (createNewUser) and the web-blueprint initialize route are not listed.
    assert.equal(me.post, undefined);
    assert.equal(d.paths['/api/v1/user/initialize'], undefined);
    assert.ok(d.tags.some((tag: any) => tag.name === 'user' && tag.description === 'Manage the current user.'));

    const ids: string[] = [];
    for (const p of Object.values<any>(d.paths)) for (const m of ['get', 'post', 'put', 'delete']) if (p[m]) ids.push(p[m].operationId);
    assert.equal(new Set(ids).size, ids.length, 'operationIds are unique');
  });

  test('?internal=true adds internal operations with their request schemas', async () => {
    for (const q of ['true', 'True', '1', 'yes']) {
      const d = (await call(t, 'GET', `/api/v1/discovery?internal=${q}`)).body;
      const post = d.paths['/api/v1/user/'].post;
      assert.equal(post?.operationId, 'createNewUser', q);
      assert.equal(post['x-internal'], true);
      assert.deepEqual(post.parameters, [{ name: 'body', in: 'body', required: true, description: 'Request body contents.', schema: { $ref: '#/definitions/NewUser' } }]);
      assert.deepEqual(d.definitions.NewUser.required, ['username', 'password']);
      assert.equal(d.definitions.NewUser.properties.email.type, 'string');
    }
    for (const q of ['false', '0', 'False']) {
      const d = (await call(t, 'GET', `/api/v1/discovery?internal=${q}`)).body;
      assert.equal(d.paths['/api/v1/user/'].post, undefined, q);
    }
  });

  test('SERVER_HOSTNAME and the URL scheme come from the configuration when set', async () => {
    const t2 = await startTestApp({ SERVER_HOSTNAME: 'quay.example.com', PREFERRED_URL_SCHEME: 'https', FEATURE_SUPER_USERS: false });
    try {
      const d = (await call(t2, 'GET', '/api/v1/discovery')).body;
      assert.equal(d.host, 'quay.example.com');
      assert.deepEqual(d.schemes, ['https']);
      assert.equal(d.securityDefinitions.oauth2_implicit.authorizationUrl, 'https://quay.example.com/oauth/authorize');
      assert.equal(d.securityDefinitions.oauth2_implicit.scopes['super:user'], undefined);
    } finally {
      await t2.close();
    }
  });
});

describe('feature-gated routes', () => {
  test('a route whose feature is off is neither listed nor served', async () => {
    const t = await startTestApp({ FEATURE_USER_CREATION: false });
    try {
      const d = (await call(t, 'GET', '/api/v1/discovery?internal=true')).body;
      assert.equal(d.paths['/api/v1/user/'].post, undefined);
      assert.equal(d.paths['/api/v1/user/'].get.operationId, 'getLoggedInUser');
      assert.equal((await call(t, 'POST', '/api/v1/user/', { json: { username: 'x1', password: 'password123' } })).status, 404);
    } finally {
      await t.close();
    }
  });

  test('without FEATURE_ANONYMOUS_ACCESS discovery stays public but error descriptions need a login', async () => {
    const t = await startTestApp({ FEATURE_ANONYMOUS_ACCESS: false });
    try {
      assert.equal((await call(t, 'GET', '/api/v1/discovery')).status, 200);
      const r = await call(t, 'GET', '/api/v1/error/not_found');
      assert.equal(r.status, 401);
      assert.deepEqual(r.body, { message: 'Anonymous access is not allowed' });
    } finally {
      await t.close();
    }
  });
});

describe('GET /api/v1/error/{error_type}', () => {
  let t: TestApp;
  before(async () => { t = await startTestApp(); });
  after(async () => { await t?.close(); });

  test('describes each error type Quay defines', async () => {
    const expected: Record<string, string> = {
      invalid_request: 'The request was invalid. It may have contained invalid values or was improperly formatted.',
      invalid_token: 'The access token provided was invalid.',
      insufficient_scope: 'The access token did not have sufficient scope to access the requested resource.',
      not_found: 'The resource was not found.',
      fresh_login_required: 'The action requires a fresh login to succeed.',
      expired_token: 'The access token provided has expired.',
      downstream_issue: 'An error occurred in a downstream service.',
    };
    for (const [type, description] of Object.entries(expected)) {
      const r = await call(t, 'GET', `/api/v1/error/${type}`);
      assert.equal(r.status, 200, type);
      assert.deepEqual(r.body, { type: `${t.url}/api/v1/error/${type}`, title: type, description });
    }
  });

  test('unknown types are 404 in the ApiError envelope', async () => {
    const r = await call(t, 'GET', '/api/v1/error/no_such_error');
    assert.equal(r.status, 404);
    assert.ok(isApiError(r.body, 404, 'not_found', t.url));
  });

  test('the type link of an error envelope resolves to its description', async () => {
    const denied = await call(t, 'GET', '/api/v1/user/');
    assert.equal(denied.status, 401);
    const link = await fetch(denied.body.type);
    assert.equal(link.status, 200);
    assert.equal((await link.json()).title, 'invalid_token');
  });

  test('an internal failure is a bare 500 that reveals nothing; the log has the detail', async () => {
    const s = t.app.services;
    const db = s.db;
    (s as { db: unknown }).db = new Proxy(db, {
      get(target, prop, recv) {
        if (prop === 'executeQuery') return async () => { throw new Error('relation "users" does not exist at /srv/secret/path'); };
        return Reflect.get(target, prop, recv);
      },
    });
    try {
      const r = await call(t, 'POST', '/api/v1/user/', { json: { username: 'zed', password: 'password123' } });
      assert.equal(r.status, 500);
      assert.deepEqual(r.body, { message: 'Internal Server Error' });
      assert.ok(r.headers.get('x-request-id'));
    } finally {
      (s as { db: unknown }).db = db;
    }
  });

  test('unknown /api/v1 paths are 404 in the ApiError envelope; other paths are not the API\'s', async () => {
    for (const path of ['/api/v1/nothing/here', '/api/v1/user/nope', '/api/v1']) {
      const r = await call(t, 'GET', path);
      assert.equal(r.status, 404, path);
      assert.ok(isApiError(r.body, 404, 'not_found', t.url), `${path}: ${r.text}`);
    }
  });
});
