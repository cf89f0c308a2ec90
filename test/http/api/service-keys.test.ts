// /api/v1/superuser/keys and /superuser/approvedkeys over real HTTP, and what a service key means
// for the registry: an approved, unexpired key of the registry's service verifies /v2 bearer
// tokens; a pending, expired, deleted or foreign-service key does not.
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { createWorld, type World } from '../../support/world.ts';
import { isApiError, logKinds } from './client.ts';
import { createServiceKey } from '../../../src/model/service-keys.ts';
import { principalFor } from '../../../src/model/context.ts';
import { REGISTRY_SERVICE } from '../../../src/model/registry-tokens.ts';
import { tokenAudience } from '../../../src/http/registry/auth.ts';

const HTTP_DATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;

async function json(res: Response): Promise<any> {
  const text = await res.text();
  return text ? JSON.parse(text) : undefined;
}

describe('service keys API', () => {
  let w: World;
  let instanceKid: string;
  before(async () => {
    w = await createWorld();
    instanceKid = w.t.app.ctx.keys.kid;
  });
  after(async () => { await w?.close(); });

  test('POST /superuser/keys generates a key pair, returns the private key once and auto-approves', async () => {
    const expiration = Math.floor(Date.now() / 1000) + 86400;
    const r = await w.api('POST', '/superuser/keys', {
      caller: 'superuser', body: { service: 'quay', name: 'Build: node/1', expiration, metadata: { team: 'ci' }, notes: 'for builders' },
    });
    assert.equal(r.status, 200);
    const b = await json(r);
    assert.deepEqual(Object.keys(b).sort(), ['kid', 'name', 'private_key', 'public_key', 'service']);
    assert.equal(b.name, 'Build: node/1');
    assert.equal(b.service, 'quay');
    assert.match(b.public_key, /^-----BEGIN PUBLIC KEY-----\n/);
    assert.match(b.private_key, /^-----BEGIN RSA PRIVATE KEY-----\n/);
    // The two PEMs are one RSA-2048 pair, and the kid is the public key's thumbprint.
    const priv = createPrivateKey(b.private_key);
    assert.equal(priv.asymmetricKeyDetails?.modulusLength, 2048);
    assert.equal(createPublicKey(priv).export({ type: 'spki', format: 'pem' }), b.public_key);

    const g = await w.api('GET', `/superuser/keys/${b.kid}`, { caller: 'superuser' });
    assert.equal(g.status, 200);
    const k = await json(g);
    assert.deepEqual(Object.keys(k).sort(), ['approval', 'created_date', 'expiration_date', 'jwk', 'kid', 'metadata', 'name', 'rotation_duration', 'service']);
    assert.equal(k.kid, b.kid);
    assert.equal(k.name, 'Build: node/1');
    assert.equal(k.service, 'quay');
    assert.deepEqual(Object.keys(k.jwk).sort(), ['e', 'kty', 'n']);
    assert.equal(k.jwk.kty, 'RSA');
    assert.deepEqual(createPublicKey({ key: k.jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }), b.public_key);
    assert.deepEqual(k.metadata, { team: 'ci', created_by: 'Quay Superuser Panel', creator: 'root', ip: '127.0.0.1' });
    assert.match(k.created_date, HTTP_DATE);
    assert.equal(k.expiration_date, new Date(expiration * 1000).toUTCString());
    assert.equal(k.rotation_duration, null);
    assert.equal(k.approval.approval_type, 'Super User API');
    assert.equal(k.approval.notes, 'for builders');
    assert.match(k.approval.approved_date, HTTP_DATE);
    assert.equal(k.approval.approver.username, 'root');
    assert.equal(k.approval.approver.kind, 'user');
    assert.equal(k.approval.approver.super_user, true);

    const logs = (await logKinds(w.t)).filter((l) => l.kind.startsWith('service_key_'));
    assert.deepEqual(logs.map((l) => l.kind), ['service_key_create', 'service_key_approve']);
    assert.equal(logs[0]!.performer_id, w.users.root.id);
    assert.equal(logs[0]!.account_id, null);
    assert.deepEqual(logs[0]!.metadata, {
      kid: b.kid, preshared: true, service: 'quay', name: 'Build: node/1', expiration_date: new Date(expiration * 1000).toISOString(), auto_approved: true,
    });

    const list = await w.api('GET', '/superuser/keys', { caller: 'readonlySuperuser' });
    assert.equal(list.status, 200);
    const keys = (await json(list)).keys;
    assert.deepEqual(keys.map((x: any) => x.kid).sort(), [b.kid, instanceKid].sort());
    const instance = keys.find((x: any) => x.kid === instanceKid);
    assert.equal(instance.approval.approval_type, 'Automatic');
    assert.equal(instance.approval.approver, null);
    assert.equal(instance.expiration_date, null);
  });

  test('a key may be created without expiration (null) and without name', async () => {
    const r = await w.api('POST', '/superuser/keys', { caller: 'superuser', body: { service: 'clair', expiration: null } });
    assert.equal(r.status, 200);
    const b = await json(r);
    assert.equal(b.name, '');
    const k = await json(await w.api('GET', `/superuser/keys/${b.kid}`, { caller: 'superuser' }));
    assert.equal(k.expiration_date, null);
    assert.equal(k.name, '');
  });

  test('POST /superuser/keys bad input: 400 with the reason, no key created', async () => {
    const s = w.t.app.services;
    const count = async () => (await s.db.selectFrom('service_keys').select('kid').execute()).length;
    const n = await count();
    const future = Math.floor(Date.now() / 1000) + 3600;
    const cases: [unknown, string][] = [
      [{ service: 'quay' }, "'expiration' is a required property"],
      [{ expiration: future }, "'service' is a required property"],
      [{ service: '', expiration: future }, "'' is too short (field 'service')"],
      [{ service: 'quay', expiration: 'tomorrow' }, "'tomorrow' is not of type 'number' (field 'expiration')"],
      [{ service: 'quay', expiration: future, metadata: 'x' }, "'x' is not of type 'object' (field 'metadata')"],
      [{ service: 'quay', expiration: future, name: 'bad<name>' }, 'Invalid service key friendly name: bad<name>'],
      [{ service: 'quay', expiration: 1000 }, 'Expiration date cannot be in the past'],
      [{ service: 'quay', expiration: 1e300 }, 'Invalid expiration date: year is out of range'],
    ];
    for (const [body, detail] of cases) {
      const r = await w.api('POST', '/superuser/keys', { caller: 'superuser', body });
      assert.equal(r.status, 400, JSON.stringify(body));
      const b = await json(r);
      assert.ok(isApiError(b, 400, 'invalid_request', w.t.url), JSON.stringify(b));
      assert.equal(b.detail, detail);
    }
    assert.equal(await count(), n);
  });

  test('PUT /superuser/keys/{kid} renames, merges metadata and extends, logging modify and extend', async () => {
    const created = await json(await w.api('POST', '/superuser/keys', { caller: 'superuser', body: { service: 'quay', name: 'first', expiration: null, metadata: { a: 1 } } }));
    const newExp = Math.floor(Date.now() / 1000) + 7200;
    const r = await w.api('PUT', `/superuser/keys/${created.kid}`, { caller: 'superuser', body: { name: 'second', metadata: { b: 2 }, expiration: newExp } });
    assert.equal(r.status, 200);
    const k = await json(r);
    assert.equal(k.name, 'second');
    assert.equal(k.metadata.a, 1);
    assert.equal(k.metadata.b, 2);
    assert.equal(k.expiration_date, new Date(newExp * 1000).toUTCString());
    const logs = (await logKinds(w.t)).filter((l) => (l.kind === 'service_key_extend' || l.kind === 'service_key_modify') && l.metadata.kid === created.kid);
    assert.deepEqual(logs.map((l) => l.kind), ['service_key_extend', 'service_key_modify']);
    assert.equal(logs[0]!.metadata.old_expiration_date, null);
    assert.equal(logs[0]!.metadata.expiration_date, new Date(newExp * 1000).toISOString());
    assert.equal(logs[1]!.metadata.name, 'second');

    const cleared = await json(await w.api('PUT', `/superuser/keys/${created.kid}`, { caller: 'superuser', body: { expiration: null } }));
    assert.equal(cleared.expiration_date, null);
    assert.equal(cleared.name, 'second');

    const before = await json(await w.api('GET', `/superuser/keys/${created.kid}`, { caller: 'superuser' }));
    const bad: [unknown, string][] = [
      [{ name: 'no;way' }, 'Invalid service key friendly name: no;way'],
      [{ expiration: 5 }, 'Cannot have an expiration date in the past'],
      // Validated together: the name is not applied when the expiration is refused.
      [{ name: 'fine', expiration: 5 }, 'Cannot have an expiration date in the past'],
      [{ name: 4 }, "4 is not of type 'string' (field 'name')"],
    ];
    for (const [body, detail] of bad) {
      const res = await w.api('PUT', `/superuser/keys/${created.kid}`, { caller: 'superuser', body });
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal((await json(res)).detail, detail);
    }
    assert.deepEqual(await json(await w.api('GET', `/superuser/keys/${created.kid}`, { caller: 'superuser' })), before);

    const missing = await w.api('PUT', '/superuser/keys/nope', { caller: 'superuser', body: { name: 'x' } });
    assert.equal(missing.status, 404);
    assert.ok(isApiError(await json(missing), 404, 'not_found', w.t.url));
  });

  test('the registry\'s own signing key cannot be deleted or given an expiration', async () => {
    const del = await w.api('DELETE', `/superuser/keys/${instanceKid}`, { caller: 'superuser' });
    assert.equal(del.status, 400);
    assert.equal((await json(del)).detail, "Cannot delete this registry's own signing key");
    const exp = await w.api('PUT', `/superuser/keys/${instanceKid}`, { caller: 'superuser', body: { expiration: Math.floor(Date.now() / 1000) + 60 } });
    assert.equal(exp.status, 400);
    const renamed = await w.api('PUT', `/superuser/keys/${instanceKid}`, { caller: 'superuser', body: { name: 'Instance key' } });
    assert.equal(renamed.status, 200);
    // Still signing: /v2/auth works.
    const tok = await fetch(`${w.t.url}/v2/auth?service=x`, { headers: { authorization: `Basic ${Buffer.from('member:password123').toString('base64')}` } });
    assert.equal(tok.status, 200);
    await tok.arrayBuffer();
  });

  test('DELETE /superuser/keys/{kid}: 204, logged; 404 afterwards', async () => {
    const created = await json(await w.api('POST', '/superuser/keys', { caller: 'superuser', body: { service: 'quay', name: 'temp', expiration: null } }));
    const r = await w.api('DELETE', `/superuser/keys/${created.kid}`, { caller: 'superuser' });
    assert.equal(r.status, 204);
    assert.equal(await r.text(), '');
    const log = (await logKinds(w.t)).filter((l) => l.kind === 'service_key_delete');
    assert.equal(log.length, 1);
    assert.equal(log[0]!.metadata.kid, created.kid);
    assert.equal(log[0]!.metadata.name, 'temp');
    assert.equal((await w.api('GET', `/superuser/keys/${created.kid}`, { caller: 'superuser' })).status, 404);
    assert.equal((await w.api('DELETE', `/superuser/keys/${created.kid}`, { caller: 'superuser' })).status, 404);
  });

  test('POST /superuser/approvedkeys/{kid}: approves a pending key once (201), unknown 404, body required', async () => {
    const s = w.t.app.services;
    const pending = await createServiceKey(s, { service: 'quay', name: 'pending', expiration: null, approver: null },
      { performer: principalFor(w.users.root, 'password', { superuser: true }) });
    const before = await json(await w.api('GET', `/superuser/keys/${pending.kid}`, { caller: 'superuser' }));
    assert.equal(before.approval, null);

    const noBody = await w.api('POST', `/superuser/approvedkeys/${pending.kid}`, { caller: 'superuser' });
    assert.equal(noBody.status, 400);
    const wrong = await w.api('POST', `/superuser/approvedkeys/${pending.kid}`, { caller: 'superuser', body: { notes: 5 } });
    assert.equal(wrong.status, 400);
    assert.equal((await json(await w.api('GET', `/superuser/keys/${pending.kid}`, { caller: 'superuser' }))).approval, null);

    const r = await w.api('POST', `/superuser/approvedkeys/${pending.kid}`, { caller: 'superuser', body: { notes: 'looks fine' } });
    assert.equal(r.status, 201);
    assert.equal(await r.text(), '');
    const k = await json(await w.api('GET', `/superuser/keys/${pending.kid}`, { caller: 'superuser' }));
    assert.equal(k.approval.approval_type, 'Super User API');
    assert.equal(k.approval.notes, 'looks fine');
    assert.equal(k.approval.approver.username, 'root');

    const again = await w.api('POST', `/superuser/approvedkeys/${pending.kid}`, { caller: 'superuser', body: { notes: 'again' } });
    assert.equal(again.status, 201);
    assert.equal((await json(await w.api('GET', `/superuser/keys/${pending.kid}`, { caller: 'superuser' }))).approval.notes, 'looks fine');
    const approvals = (await logKinds(w.t)).filter((l) => l.kind === 'service_key_approve' && l.metadata.kid === pending.kid);
    assert.equal(approvals.length, 1);

    const unknown = await w.api('POST', '/superuser/approvedkeys/nope', { caller: 'superuser', body: {} });
    assert.equal(unknown.status, 404);
  });

  test('read-only superuser may list and get keys but not create, change, approve or delete them', async () => {
    const s = w.t.app.services;
    const n = (await s.db.selectFrom('service_keys').select('kid').execute()).length;
    assert.equal((await w.api('GET', `/superuser/keys/${instanceKid}`, { caller: 'readonlySuperuser' })).status, 200);
    const muts: [string, string, unknown][] = [
      ['POST', '/superuser/keys', { service: 'quay', expiration: null }],
      ['PUT', `/superuser/keys/${instanceKid}`, { name: 'x' }],
      ['DELETE', `/superuser/keys/${instanceKid}`, undefined],
      ['POST', `/superuser/approvedkeys/${instanceKid}`, {}],
    ];
    for (const [method, path, body] of muts) {
      const r = await w.api(method, path, { caller: 'readonlySuperuser', body });
      assert.equal(r.status, 403, `${method} ${path}`);
      assert.ok(isApiError(await json(r), 403, 'insufficient_scope', w.t.url));
    }
    assert.equal((await s.db.selectFrom('service_keys').select('kid').execute()).length, n);
  });
});

describe('service keys and registry bearer tokens', () => {
  let w: World;
  let offset = 0;
  before(async () => {
    w = await createWorld();
    const s = w.t.app.services;
    const real = s.now;
    s.now = () => real() + offset;
  });
  after(async () => { await w?.close(); });

  async function sign(privatePem: string, kid: string, opts: { lifetime?: number } = {}): Promise<string> {
    const now = Math.floor((Date.now() + offset) / 1000);
    return new SignJWT({ access: [{ type: 'repository', name: 'acme/repo', actions: ['pull'] }], context: { version: 2, entity_kind: 'anonymous' } })
      .setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' })
      .setIssuer(REGISTRY_SERVICE).setAudience(tokenAudience(w.t.app.ctx)).setSubject('builder')
      .setIssuedAt(now).setNotBefore(now).setExpirationTime(now + (opts.lifetime ?? 3600)).setJti(randomUUID())
      .sign(createPrivateKey(privatePem));
  }

  async function v2(token: string): Promise<number> {
    const r = await fetch(`${w.t.url}/v2/`, { headers: { authorization: `Bearer ${token}` } });
    await r.arrayBuffer();
    return r.status;
  }

  test('a pending key is refused; approved it verifies at once; deleted it is refused at once (even cached)', async () => {
    const s = w.t.app.services;
    const keys = w.t.app.ctx.keys;
    const pending = await createServiceKey(s, { service: REGISTRY_SERVICE, name: 'builder', expiration: null, approver: null },
      { performer: principalFor(w.users.root, 'password', { superuser: true }), keys });
    const token = await sign(pending.privateKeyPem, pending.kid);
    assert.equal(await v2(token), 401);

    const approve = await w.api('POST', `/superuser/approvedkeys/${pending.kid}`, { caller: 'superuser', body: {} });
    assert.equal(approve.status, 201);
    assert.equal(await v2(token), 200);
    assert.equal(await v2(token), 200); // served from the verified-token cache

    const del = await w.api('DELETE', `/superuser/keys/${pending.kid}`, { caller: 'superuser' });
    assert.equal(del.status, 204);
    assert.equal(await v2(token), 401);
    assert.equal(await v2(await sign(pending.privateKeyPem, pending.kid)), 401);
  });

  test('a key made through the API verifies at once; keys of other services never do', async () => {
    const mine = await json(await w.api('POST', '/superuser/keys', { caller: 'superuser', body: { service: REGISTRY_SERVICE, expiration: null } }));
    assert.equal(await v2(await sign(mine.private_key, mine.kid)), 200);
    const other = await json(await w.api('POST', '/superuser/keys', { caller: 'superuser', body: { service: 'clair', expiration: null } }));
    assert.equal(await v2(await sign(other.private_key, other.kid)), 401);
    // A kid the registry never issued, signed by a real key: refused.
    assert.equal(await v2(await sign(other.private_key, 'made-up-kid')), 401);
  });

  test('an expired key stops verifying, including tokens already cached', async () => {
    const exp = Math.floor((Date.now() + offset) / 1000) + 60;
    const k = await json(await w.api('POST', '/superuser/keys', { caller: 'superuser', body: { service: REGISTRY_SERVICE, expiration: exp } }));
    const token = await sign(k.private_key, k.kid, { lifetime: 24 * 3600 });
    assert.equal(await v2(token), 200);
    offset = 120_000;
    assert.equal(await v2(token), 401);
    // Extending it again (from the moved clock) makes it trusted again.
    const ext = await w.api('PUT', `/superuser/keys/${k.kid}`, { caller: 'superuser', body: { expiration: Math.floor((Date.now() + offset) / 1000) + 3600 } });
    assert.equal(ext.status, 200);
    assert.equal(await v2(await sign(k.private_key, k.kid)), 200);
    offset = 0;
  });

  test('another replica (its own key cache) drops a deleted key within the refresh period', async () => {
    const { RegistryKeys, KEY_REFRESH_MS } = await import('../../../src/model/registry-tokens.ts');
    const s = w.t.app.services;
    const k = await json(await w.api('POST', '/superuser/keys', { caller: 'superuser', body: { service: REGISTRY_SERVICE, expiration: null } }));
    const replica = new RegistryKeys(s);
    await replica.init();
    const token = await sign(k.private_key, k.kid);
    const aud = tokenAudience(w.t.app.ctx);
    assert.ok(await replica.verify(token, aud));
    assert.equal((await w.api('DELETE', `/superuser/keys/${k.kid}`, { caller: 'superuser' })).status, 204);
    // The other replica still trusts the key until its cache is older than the refresh period...
    assert.ok(await replica.trusts(k.kid));
    offset = KEY_REFRESH_MS + 1000;
    // ...then it reloads and refuses tokens signed with it.
    assert.equal(await replica.trusts(k.kid), false);
    assert.equal(await replica.verify(await sign(k.private_key, k.kid), aud), null);
    offset = 0;
  });
});
