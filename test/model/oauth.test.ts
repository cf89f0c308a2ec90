// Quay's scope-string rules (auth/scopes.py) as src/model/oauth.ts implements them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseScopes, scopeInformation, scopesCover, SCOPES } from '../../src/model/oauth.ts';
import { isBrowserUserAgent } from '../../src/http/api/csrf.ts';

test('scope strings: space or comma separated, any unknown or empty part voids the whole string', () => {
  assert.deepEqual(parseScopes('repo:read user:read'), ['repo:read', 'user:read']);
  assert.deepEqual(parseScopes('repo:read,user:read'), ['repo:read', 'user:read']);
  assert.deepEqual(parseScopes('repo:read repo:read'), ['repo:read']);
  for (const bad of ['', 'repo:read ', 'repo:read,,user:read', 'repo:read bogus', 'direct_user_login', 'REPO:READ']) {
    assert.deepEqual(parseScopes(bad), [], JSON.stringify(bad));
  }
  assert.equal(SCOPES.length, 8);
});

test('implied scopes: repo:admin covers write and read; nothing covers an invalid request', () => {
  assert.ok(scopesCover('repo:admin', 'repo:read repo:write'));
  assert.ok(scopesCover('repo:write,user:read', 'repo:read user:read'));
  assert.ok(!scopesCover('repo:read', 'repo:write'));
  assert.ok(!scopesCover('user:admin', 'user:read'), 'Quay does not imply user:read from user:admin here');
  assert.ok(!scopesCover('', 'repo:read'));
  assert.deepEqual(scopeInformation('org:admin').map((s) => [s.scope, s.dangerous, s.icon]), [['org:admin', true, 'fa-gear']]);
});

test('browser user agents, as Quay\'s ua-parser family list decides', () => {
  const yes = [
    'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15',
    'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0',
    'Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 OPR/109.0.0.0',
    'Lynx/2.9.0dev.12 libwww-FM/2.14 SSL-MM/1.4.1 GNUTLS/3.7.8',
  ];
  const no = [
    undefined, '', 'curl/8.5.0', 'skopeo/1.9.3', 'containers/5.23.1 (github.com/containers/image)', 'python-requests/2.31.0',
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0',
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
  ];
  for (const ua of yes) assert.equal(isBrowserUserAgent(ua), true, ua);
  for (const ua of no) assert.equal(isBrowserUserAgent(ua), false, String(ua));
});
