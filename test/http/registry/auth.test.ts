import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT, generateKeyPair, exportJWK, decodeJwt, decodeProtectedHeader } from 'jose';
import { startTestApp, type TestApp } from '../../support/app.ts';
import { RegistryClient, basic } from '../../support/registry-client.ts';
import { createAppToken, createOAuthApplication, createOAuthToken, createOrganization, createRobot, createUser, findUser } from '../../../src/model/accounts.ts';

let t: TestApp;
let robotToken: string;
let appToken: string;
let oauthRead: string;
let oauthWrite: string;

before(async () => {
  t = await startTestApp();
  const s = t.app.services;
  const alice = await createUser(s, { username: 'alice', password: 'password1', email: 'alice@example.com' });
  await createUser(s, { username: 'bob', password: 'password2', email: 'bob@example.com' });
  await createOrganization(s, 'acme', alice);
  robotToken = (await createRobot(s, alice, 'ci')).token;
  appToken = (await createAppToken(s, alice, 'laptop')).token;
  const appId = await createOAuthApplication(s, (await findUser(s, 'acme'))!, 'automation');
  oauthRead = (await createOAuthToken(s, appId, alice, 'repo:read')).token;
  oauthWrite = (await createOAuthToken(s, appId, alice, 'repo:read repo:write repo:create')).token;
  await new RegistryClient(t.url, 'alice', 'password1').pushImage('alice/private', 'v1');
});
after(() => t.close());

async function auth(authz: string | null, ...scopes: string[]): Promise<Response> {
  const qs = new URLSearchParams({ service: t.host });
  for (const s of scopes) qs.append('scope', s);
  return fetch(`${t.url}/v2/auth?${qs}`, { headers: authz ? { authorization: authz } : {} });
}

async function access(authz: string | null, scope: string): Promise<string[]> {
  const res = await auth(authz, scope);
  assert.equal(res.status, 200, await res.clone().text());
  const body = (await res.json()) as { token: string };
  const claims = decodeJwt(body.token) as { access: { actions: string[] }[] };
  return claims.access[0]!.actions;
}

test('GET /v2/ without a token answers 401 with Quay\'s Bearer challenge', async () => {
  const res = await fetch(`${t.url}/v2/`);
  assert.equal(res.status, 401);
  assert.equal(res.headers.get('www-authenticate'), `Bearer realm="${t.url}/v2/auth",service="${t.host}"`);
  assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
  const body = await res.json();
  assert.deepEqual(body, { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required', detail: {} }] });
});

test('the token response and JWT carry Quay\'s fields and claims', async () => {
  const res = await auth(basic('alice', 'password1'), 'repository:alice/private:pull,push');
  assert.equal(res.status, 200);
  const body = (await res.json()) as Record<string, unknown>;
  assert.equal(typeof body.token, 'string');
  assert.equal(body.access_token, body.token);
  assert.equal(body.expires_in, 3600);
  assert.match(body.issued_at as string, /^\d{4}-\d\d-\d\dT/);
  const header = decodeProtectedHeader(body.token as string);
  assert.equal(header.alg, 'RS256');
  assert.equal(typeof header.kid, 'string');
  const claims = decodeJwt(body.token as string) as Record<string, any>;
  assert.equal(claims.iss, 'quay');
  assert.equal(claims.sub, 'alice');
  assert.equal(claims.exp - claims.iat, 3600);
  assert.deepEqual(claims.access, [{ type: 'repository', name: 'alice/private', actions: ['pull', 'push'] }]);
  assert.equal(claims.context.version, 2);
  assert.equal(claims.context.entity_kind, 'user');
  assert.equal(claims.context.user, 'alice');
  const withToken = await fetch(`${t.url}/v2/`, { headers: { authorization: `Bearer ${body.token}` } });
  assert.equal(withToken.status, 200);
});

test('POST /v2/auth takes the same credentials', async () => {
  const res = await fetch(`${t.url}/v2/auth`, {
    method: 'POST', headers: { authorization: basic('alice', 'password1'), 'content-type': 'application/x-www-form-urlencoded' },
    body: 'service=x&scope=repository:alice/private:pull',
  });
  assert.equal(res.status, 200);
  const claims = decodeJwt(((await res.json()) as { token: string }).token) as { access: unknown };
  assert.deepEqual(claims.access, [{ type: 'repository', name: 'alice/private', actions: ['pull'] }]);
});

test('POST /v2/auth honours the OAuth2 password grant containerd sends; other grants are refused', async () => {
  const post = (form: Record<string, string>) => fetch(`${t.url}/v2/auth`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString(),
  });
  const base = { grant_type: 'password', client_id: 'containerd-client', service: t.host, scope: 'repository:alice/private:pull' };
  const ok = await post({ ...base, username: 'alice', password: 'password1' });
  assert.equal(ok.status, 200);
  const claims = decodeJwt(((await ok.json()) as { token: string }).token) as { sub: string; access: unknown };
  assert.equal(claims.sub, 'alice');
  assert.deepEqual(claims.access, [{ type: 'repository', name: 'alice/private', actions: ['pull'] }]);
  const robot = await post({ ...base, username: 'acme+nobody', password: robotToken });
  assert.equal(robot.status, 401);
  const wrong = await post({ ...base, username: 'alice', password: 'wrong' });
  assert.equal(wrong.status, 401);
  assert.equal(((await wrong.json()) as { errors: { code: string }[] }).errors[0]!.code, 'UNAUTHORIZED');
  const refresh = await post({ grant_type: 'refresh_token', refresh_token: 'x', service: t.host, scope: base.scope });
  assert.equal(refresh.status, 405);
});

test('bad credentials answer 401 with an OCI error body', async () => {
  for (const creds of [basic('alice', 'wrong'), basic('nobody', 'password1'), basic('alice+ci', 'WRONG'), basic('$app', 'X'.repeat(120)), basic('$oauthtoken', 'y'.repeat(40)), 'Basic !!!']) {
    const res = await auth(creds, 'repository:alice/private:pull');
    assert.equal(res.status, 401, creds);
    const body = (await res.json()) as { errors: { code: string }[] };
    assert.equal(body.errors[0]!.code, 'UNAUTHORIZED');
  }
});

test('every Quay credential form is accepted: password, robot, $app, $oauthtoken', async () => {
  assert.deepEqual(await access(basic('alice', 'password1'), 'repository:alice/private:pull,push'), ['pull', 'push']);
  assert.deepEqual(await access(basic('$app', appToken), 'repository:alice/private:pull,push'), ['pull', 'push']);
  assert.deepEqual(await access(basic('alice', appToken), 'repository:alice/private:pull'), ['pull']);
  assert.deepEqual(await access(basic('$oauthtoken', oauthWrite), 'repository:alice/private:pull,push'), ['pull', 'push']);
  // A robot holds nothing until it is granted something.
  assert.deepEqual(await access(basic('alice+ci', robotToken), 'repository:alice/private:pull'), []);
});

test('OAuth scopes narrow what a token grants', async () => {
  assert.deepEqual(await access(basic('$oauthtoken', oauthRead), 'repository:alice/private:pull,push'), ['pull']);
  // repo:create is needed to create by push (reading a not-yet-pushed repository of one's own
  // namespace is allowed, as in Quay: the pull then answers NAME_UNKNOWN).
  assert.deepEqual(await access(basic('$oauthtoken', oauthRead), 'repository:alice/newrepo:pull,push'), ['pull']);
  assert.deepEqual(await access(basic('$oauthtoken', oauthWrite), 'repository:alice/newrepo:pull,push'), ['pull', 'push']);
});

test('granted actions follow permissions', async () => {
  // Bob has nothing on alice's private repository, and may not create in her namespace.
  assert.deepEqual(await access(basic('bob', 'password2'), 'repository:alice/private:pull,push'), []);
  assert.deepEqual(await access(basic('bob', 'password2'), 'repository:alice/other:pull,push'), []);
  // Bob may create in his own namespace; alice (org admin) in acme.
  assert.deepEqual(await access(basic('bob', 'password2'), 'repository:bob/new:pull,push'), ['pull', 'push']);
  assert.deepEqual(await access(basic('alice', 'password1'), 'repository:acme/new:pull,push'), ['pull', 'push']);
  assert.deepEqual(await access(basic('bob', 'password2'), 'repository:acme/new:pull,push'), []);
  // Only admins get '*'.
  assert.deepEqual(await access(basic('alice', 'password1'), 'repository:alice/private:*'), ['*']);
  // Anonymous gets nothing on a private repository, and invalid names grant nothing.
  assert.deepEqual(await access(null, 'repository:alice/private:pull'), []);
  assert.deepEqual(await access(basic('alice', 'password1'), 'repository:Alice/../x:pull'), []);
});

test('a token for one repository does not open another', async () => {
  const c = new RegistryClient(t.url, 'alice', 'password1');
  await c.pushImage('alice/second', 'v1');
  const token = await c.token('repository:alice/second:pull');
  const res = await fetch(`${t.url}/v2/alice/private/manifests/v1`, { headers: { authorization: `Bearer ${token}` } });
  // Quay's answer: 401 with a challenge for the scope that is missing.
  assert.equal(res.status, 401);
  assert.match(res.headers.get('www-authenticate')!, /scope="repository:alice\/private:pull"/);
  assert.equal(((await res.json()) as { errors: { code: string }[] }).errors[0]!.code, 'UNAUTHORIZED');
});

test('forged tokens are refused: embedded keys, other keys, alg none, expired, tampered', async () => {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(publicKey);
  const now = Math.floor(Date.now() / 1000);
  const claims = { access: [{ type: 'repository', name: 'alice/private', actions: ['pull', 'push'] }], context: { version: 2, entity_kind: 'user', user: 'alice', quayside: { uid: 1, su: true, scopes: null, via: 'password' } } };
  const good = ((await (await auth(basic('alice', 'password1'), 'repository:alice/private:pull')).json()) as { token: string }).token;
  const realKid = decodeProtectedHeader(good).kid!;
  const forged = [
    // A key carried in the token itself (CVE-2025-24976 class).
    await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', jwk }).setIssuer('quay').setAudience('quayside').setSubject('alice').setIssuedAt(now).setExpirationTime(now + 600).sign(privateKey),
    await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: realKid, jwk }).setIssuer('quay').setAudience('quayside').setSubject('alice').setIssuedAt(now).setExpirationTime(now + 600).sign(privateKey),
    await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: realKid, jku: 'http://127.0.0.1:1/keys', x5u: 'http://127.0.0.1:1/x' } as never).setIssuer('quay').setAudience('quayside').setSubject('alice').setIssuedAt(now).setExpirationTime(now + 600).sign(privateKey),
    `${Buffer.from(JSON.stringify({ alg: 'none', kid: realKid })).toString('base64url')}.${Buffer.from(JSON.stringify({ ...claims, iss: 'quay', aud: 'quayside', exp: now + 600 })).toString('base64url')}.`,
    // Tampered payload on a real signature.
    `${good.split('.')[0]}.${Buffer.from(JSON.stringify({ ...claims, iss: 'quay', aud: 'quayside', exp: now + 600, sub: 'alice' })).toString('base64url')}.${good.split('.')[2]}`,
    'not.a.jwt',
  ];
  for (const token of forged) {
    const res = await fetch(`${t.url}/v2/alice/private/manifests/v1`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 401, token.slice(0, 40));
    assert.equal(((await res.json()) as { errors: { code: string }[] }).errors[0]!.code, 'UNAUTHORIZED');
  }
});

test('an expired token is refused', async () => {
  const s = t.app.services;
  const realNow = s.now;
  s.now = () => realNow() - 2 * 3600 * 1000;
  let token: string;
  try {
    token = ((await (await auth(basic('alice', 'password1'), 'repository:alice/private:pull')).json()) as { token: string }).token;
  } finally {
    s.now = realNow;
  }
  const res = await fetch(`${t.url}/v2/alice/private/manifests/v1`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 401);
});

test('anonymous access can be disabled', async () => {
  const t2 = await startTestApp({ FEATURE_ANONYMOUS_ACCESS: false });
  try {
    const res = await fetch(`${t2.url}/v2/auth?service=x&scope=repository:a/b:pull`);
    assert.equal(res.status, 401);
  } finally {
    await t2.close();
  }
});

test('too many or malformed scopes are refused', async () => {
  const many = Array.from({ length: 40 }, (_, i) => `repository:alice/r${i}:pull`);
  assert.equal((await auth(basic('alice', 'password1'), ...many)).status, 403);
  assert.equal((await auth(basic('alice', 'password1'), 'garbage')).status, 400);
});
