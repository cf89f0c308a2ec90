// Who may log in, pull and push, as real clients see it: passwords, app tokens ($app), robots,
// anonymous pulls of public and private repositories, and refusals users can read. skopeo does
// most of the talking; podman checks that its login and anonymous pull agree.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { copy, createClientContext, inspect, login, pull, podman } from '../support/clients.ts';
import type { ClientContext, RunResult } from '../support/clients.ts';
import { buildBusyboxImage } from '../support/images.ts';
import type { BuiltImage } from '../support/images.ts';
import { startTestApp } from '../support/app.ts';
import type { TestApp } from '../support/app.ts';
import { createAppToken, createOrganization, createRobot, createUser } from '../../src/model/accounts.ts';
import type { User } from '../../src/model/accounts.ts';
import { principalFor } from '../../src/model/context.ts';
import { setRepoPermission } from '../../src/model/permissions.ts';
import { findRepo, setVisibility } from '../../src/model/repositories.ts';
import { failure, ociTagDescriptor, reportTimings, timed } from './e2e.ts';

const ALICE_PASS = 'alice-secret-1';
const BOB_PASS = 'bob-secret-22';

let t: TestApp;
let alice: User;
let bob: User;
let deployer: { robot: User; token: string };
let stranger: { robot: User; token: string };
let appToken: string;
let image: BuiltImage;
let other: BuiltImage;
const contexts: ClientContext[] = [];

reportTimings('access e2e');

async function context(): Promise<ClientContext> {
  const c = await createClientContext('e2e-access-');
  contexts.push(c);
  return c;
}

/** A fresh client context logged in with skopeo as `user`. */
async function loggedIn(user: string, pass: string): Promise<ClientContext> {
  const c = await context();
  await timed(`skopeo login ${user.slice(0, 16)}`, () => login('skopeo', t.host, user, pass, c));
  return c;
}

before(async () => {
  t = await timed('start quayside', () => startTestApp());
  const s = t.app.services;
  alice = await createUser(s, { username: 'alice', password: ALICE_PASS, email: 'alice@example.com' });
  bob = await createUser(s, { username: 'bob', password: BOB_PASS, email: 'bob@example.com' });
  const acme = await createOrganization(s, 'acme', alice);
  deployer = await createRobot(s, acme, 'deployer');
  stranger = await createRobot(s, acme, 'stranger');
  appToken = (await createAppToken(s, alice, 'laptop')).token;

  const owner = await context();
  image = await buildBusyboxImage(join(owner.dir, 'layout'));
  other = await buildBusyboxImage(join(owner.dir, 'layout'), { extraFile: 'second', tag: 'second' });
  await login('skopeo', t.host, 'alice', ALICE_PASS, owner);
  await timed('seed repositories', async () => {
    for (const repo of ['acme/app:1', 'alice/public:1', 'alice/private:1']) await copy(image.ref, `docker://${t.host}/${repo}`, owner);
  });
  const pub = (await findRepo(s, 'alice', 'public'))!;
  await setVisibility(s, pub, 'public', principalFor(alice, 'password'));
  const app = (await findRepo(s, 'acme', 'app'))!;
  await setRepoPermission(s, app.id, { userId: deployer.robot.id }, 'write');
});

after(async () => {
  for (const c of contexts) await c.cleanup();
  await t?.close();
});

const at = (path: string) => `docker://${t.host}/${path}`;

// Quayside answers an authenticated client that lacks access with 403 DENIED (Quay: 401). A push
// starts with HEAD on a blob, which has no body, so containers/image reports just the status.
const DENIED = /denied|unauthorized|403 \(Forbidden\)/i;

/** A refused push: clear about which repository, and never a server error. */
function assertPushDenied(r: RunResult, repo: string): void {
  assertRefused(r, DENIED);
  assert.match(r.stderr, new RegExp(`\\b${repo}\\b`), failure(r));
}

function assertRefused(r: RunResult, pattern: RegExp): void {
  assert.notEqual(r.code, 0, `expected a refusal: ${r.argv.join(' ')}\n${r.stdout}`);
  assert.equal(r.timedOut, false);
  assert.match(r.stderr, pattern, failure(r));
  assert.doesNotMatch(r.stderr, /\b50\d\b|internal server error/i, failure(r));
}

test('login with the right password stores credentials; a wrong password or unknown user is refused', async () => {
  const c = await context();
  const ok = await timed('skopeo login (good)', () => login('skopeo', t.host, 'alice', ALICE_PASS, c));
  assert.equal(ok.code, 0);
  assert.match(ok.stdout, /Login Succeeded/);
  const auths = (JSON.parse(await readFile(c.authFile, 'utf8')) as { auths: Record<string, { auth: string }> }).auths;
  assert.equal(Buffer.from(auths[t.host]!.auth, 'base64').toString(), `alice:${ALICE_PASS}`);

  for (const [user, pass] of [['alice', 'wrong-password'], ['nobody', ALICE_PASS]] as const) {
    const bad = await context();
    const r = await timed(`skopeo login (bad: ${user})`, () => login('skopeo', t.host, user, pass, { ...bad, allowFailure: true }));
    assertRefused(r, /invalid username\/password/i);
    assert.deepEqual(JSON.parse(await readFile(bad.authFile, 'utf8')), { auths: {} }, 'nothing stored');
  }
  const p = await context();
  const wrong = await timed('podman login (bad)', () => login('podman', t.host, 'alice', 'wrong-password', { ...p, allowFailure: true }));
  assertRefused(wrong, /invalid username\/password/i);
  const right = await timed('podman login (good)', () => login('podman', t.host, 'alice', ALICE_PASS, p));
  assert.match(right.stdout, /Login Succeeded/);
});

test('an app token logs in as $app, and a robot as ns+name with its token', async () => {
  const viaApp = await loggedIn('$app', appToken);
  assert.equal((await inspect<{ Digest: string }>(at('alice/private:1'), viaApp)).json.Digest, image.manifestDigest);

  const robot = await loggedIn(deployer.robot.username, deployer.token);
  assert.equal(deployer.robot.username, 'acme+deployer');
  assert.equal((await inspect<{ Digest: string }>(at('acme/app:1'), robot)).json.Digest, image.manifestDigest);

  // A robot's token is its password: the other robot's token, or the owner's password, is refused.
  for (const [user, pass] of [['acme+deployer', stranger.token], ['acme+deployer', ALICE_PASS], ['$app', 'X'.repeat(120)]] as const) {
    const c = await context();
    assertRefused(await login('skopeo', t.host, user, pass, { ...c, allowFailure: true }), /invalid username\/password/i);
  }
});

test('anonymous clients pull a public repository', async () => {
  const anon = await context();
  const info = await timed('skopeo inspect (anonymous, public)', () => inspect<{ Digest: string }>(at('alice/public:1'), anon));
  assert.equal(info.json.Digest, image.manifestDigest);
  const layout = join(anon.dir, 'pulled');
  await timed('skopeo copy (anonymous, public) -> oci:', () => copy(at('alice/public:1'), `oci:${layout}:p`, anon));
  assert.equal((await ociTagDescriptor(layout, 'p')).digest, image.manifestDigest);
  await timed('podman pull (anonymous, public)', () => pull('podman', `${t.host}/alice/public:1`, anon));
  const digest = await podman(['image', 'inspect', '--format', '{{.Digest}}', `${t.host}/alice/public:1`], anon);
  assert.equal(digest.stdout.trim(), image.manifestDigest, failure(digest));
});

test('anonymous clients are refused a private repository with an auth error, not a 500', async () => {
  const anon = await context();
  const r = await timed('skopeo inspect (anonymous, private)', () => inspect(at('alice/private:1'), { ...anon, allowFailure: true }));
  assertRefused(r.result, /unauthorized|authentication required|denied/i);
  const p = await timed('podman pull (anonymous, private)', () => pull('podman', `${t.host}/alice/private:1`, { ...anon, allowFailure: true }));
  assertRefused(p, /unauthorized|authentication required|denied/i);
  // Anonymous pushes are refused even to a public repository.
  const push = await copy(other.ref, at('alice/public:anon'), { ...anon, allowFailure: true });
  assertRefused(push, /unauthorized|authentication required|denied/i);
});

test('a robot with write permission and an app token push; both pushes are readable', async () => {
  const robot = await loggedIn(deployer.robot.username, deployer.token);
  await timed('skopeo copy (robot, write)', () => copy(other.ref, at('acme/app:robot'), robot));
  assert.equal((await inspect<{ Digest: string }>(at('acme/app:robot'), robot)).json.Digest, other.manifestDigest);

  const viaApp = await loggedIn('$app', appToken);
  await timed('skopeo copy (app token, new repo)', () => copy(other.ref, at('alice/by-app-token:1'), viaApp));
  await copy(other.ref, at('acme/app:app-token'), viaApp);
  const owner = await loggedIn('alice', ALICE_PASS);
  assert.equal((await inspect<{ Digest: string }>(at('alice/by-app-token:1'), owner)).json.Digest, other.manifestDigest);
  assert.equal((await inspect<{ Digest: string }>(at('acme/app:app-token'), owner)).json.Digest, other.manifestDigest);
});

test('a user without permission is denied a push, and a read-only user may pull but not push', async () => {
  const c = await loggedIn('bob', BOB_PASS);
  const denied = await timed('skopeo copy (bob, no permission)', () => copy(other.ref, at('acme/app:bob'), { ...c, allowFailure: true }));
  assertPushDenied(denied, 'acme/app');
  const notMine = await copy(other.ref, at('alice/bobs-idea:1'), { ...c, allowFailure: true });
  assertPushDenied(notMine, 'alice/bobs-idea');
  const noRead = await inspect(at('acme/app:1'), { ...c, allowFailure: true });
  assertRefused(noRead.result, DENIED);

  const app = (await findRepo(t.app.services, 'acme', 'app'))!;
  await setRepoPermission(t.app.services, app.id, { userId: bob.id }, 'read');
  assert.equal((await inspect<{ Digest: string }>(at('acme/app:1'), c)).json.Digest, image.manifestDigest);
  const readOnly = await copy(other.ref, at('acme/app:bob'), { ...c, allowFailure: true });
  assertPushDenied(readOnly, 'acme/app');

  const owner = await loggedIn('alice', ALICE_PASS);
  const tags = await inspect<{ RepoTags: string[] }>(at('acme/app:1'), owner);
  assert.equal(tags.json.RepoTags.includes('bob'), false);
});

test('a robot without permission is denied a push and a pull', async () => {
  const c = await loggedIn(stranger.robot.username, stranger.token);
  const r = await timed('skopeo copy (robot, no permission)', () => copy(other.ref, at('acme/app:stranger'), { ...c, allowFailure: true }));
  assertPushDenied(r, 'acme/app');
  const created = await copy(other.ref, at('acme/robot-made:1'), { ...c, allowFailure: true });
  assertPushDenied(created, 'acme/robot-made');
  assert.equal(await findRepo(t.app.services, 'acme', 'robot-made'), undefined);
  const read = await inspect(at('acme/app:1'), { ...c, allowFailure: true });
  assertRefused(read.result, DENIED);
});
