// Quay-style registry bearer tokens: RS256 JWTs signed with the instance service key, which lives
// in the database (private part encrypted) so every replica signs and verifies with the same key.
// Verification uses only keys held in memory: never the token's own jwk/jku/x5u/x5c headers.
// Trusted keys are the approved, unexpired service keys of the registry's own service (Quay's
// INSTANCE_SERVICE_KEY_SERVICE), reloaded at most every KEY_REFRESH_MS, and at once on this
// replica when a service key changes (src/model/service-keys.ts calls refresh()).
import { randomUUID } from 'node:crypto';
import { SignJWT, jwtVerify, generateKeyPair, exportJWK, importJWK, decodeProtectedHeader, calculateJwkThumbprint, type JWK } from 'jose';
import type { Principal, Services } from './context.ts';
import { principalFor } from './context.ts';
import { findUserById, isSuperuser } from './accounts.ts';

export const TOKEN_TTL_SECONDS = 3600;
const ISSUER = 'quay';
const SERVICE = 'quay';

export interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

export interface VerifiedToken {
  sub: string;
  access: AccessEntry[];
  principal: Principal;
}

type SigningKey = { kid: string; privateKey: CryptoKey };
type Verifier = { key: CryptoKey; expiresAt: number | null };

/** How stale the trusted-key set may get before a verification reloads it (deletions on other replicas). */
export const KEY_REFRESH_MS = 30_000;

export class RegistryKeys {
  private signing: SigningKey | null = null;
  private verifiers = new Map<string, Verifier>();
  private lastRefresh = 0;
  private refreshing: Promise<void> | null = null;
  // Refreshes can overlap (a periodic one and one after a key change): a reload that started
  // earlier must not overwrite the result of one that started later.
  private started = 0;
  private applied = 0;

  private readonly s: Services;
  constructor(s: Services) {
    this.s = s;
  }

  /** Loads the instance key, creating it on the first start. Safe when replicas race. */
  async init(): Promise<void> {
    const existing = await this.s.db.selectFrom('settings').select('value').where('key', '=', 'instance_service_key_kid').executeTakeFirst();
    if (!existing) {
      const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
      const pub = await exportJWK(publicKey);
      const priv = await exportJWK(privateKey);
      const kid = await calculateJwkThumbprint(pub);
      await this.s.db.transaction().execute(async (tx) => {
        const claimed = await tx.insertInto('settings').values({ key: 'instance_service_key_kid', value: kid })
          .onConflict((oc) => oc.column('key').doNothing()).executeTakeFirst();
        if (Number(claimed.numInsertedOrUpdatedRows ?? 0) === 0) return; // another replica won
        await tx.insertInto('service_keys').values({
          kid, name: 'Quayside instance key', service: SERVICE, jwk: JSON.stringify({ ...pub, kid, alg: 'RS256', use: 'sig' }),
          private_jwk_enc: this.s.box.encrypt(JSON.stringify(priv)), metadata: JSON.stringify({ created_by: 'quayside' }),
          created_at: this.s.now(), expires_at: null, rotation_duration: null, approval: JSON.stringify({ approval_type: 'automatic' }),
        }).execute();
      });
    }
    await this.refresh();
  }

  async refresh(): Promise<void> {
    const generation = ++this.started;
    const kidRow = await this.s.db.selectFrom('settings').select('value').where('key', '=', 'instance_service_key_kid').executeTakeFirstOrThrow();
    const keys = await this.s.db.selectFrom('service_keys').selectAll().where('service', '=', SERVICE).execute();
    const now = this.s.now();
    // Built aside and swapped in whole, so concurrent verifications never see a half-loaded set.
    const verifiers = new Map<string, Verifier>();
    let signing = this.signing;
    for (const k of keys) {
      if (k.expires_at !== null && k.expires_at <= now) continue;
      if (k.approval === null) continue; // unapproved keys are not trusted
      const jwk = JSON.parse(k.jwk) as JWK;
      try {
        verifiers.set(k.kid, { key: (await importJWK({ ...jwk, alg: 'RS256' }, 'RS256')) as CryptoKey, expiresAt: k.expires_at });
      } catch {
        this.s.log.warn({ kid: k.kid }, 'service key is not a usable RS256 key; ignored');
      }
      if (k.kid === kidRow.value && k.private_jwk_enc && signing?.kid !== k.kid) {
        const priv = JSON.parse(this.s.box.decrypt(k.private_jwk_enc)) as JWK;
        signing = { kid: k.kid, privateKey: (await importJWK(priv, 'RS256')) as CryptoKey };
      }
    }
    if (!signing) throw new Error('instance service key missing: the database and DATABASE_SECRET_KEY do not match');
    if (generation < this.applied) return;
    this.applied = generation;
    this.verifiers = verifiers;
    this.signing = signing;
    this.lastRefresh = now;
  }

  /** Reloads when the set is older than KEY_REFRESH_MS; a failed reload keeps the cached set for another period. */
  private async refreshIfStale(): Promise<void> {
    if (this.s.now() - this.lastRefresh <= KEY_REFRESH_MS) return;
    this.refreshing ??= this.refresh()
      .catch((err: unknown) => {
        this.lastRefresh = this.s.now();
        this.s.log.warn({ err }, 'reloading service keys failed; keeping the cached keys');
      })
      .finally(() => { this.refreshing = null; });
    await this.refreshing;
  }

  /** Whether a key id is currently trusted (approved, unexpired, not deleted as of the last refresh). */
  async trusts(kid: string): Promise<boolean> {
    await this.refreshIfStale();
    const v = this.verifiers.get(kid);
    return !!v && (v.expiresAt === null || v.expiresAt > this.s.now());
  }

  get kid(): string {
    return this.signing!.kid;
  }

  async sign(principal: Principal, audience: string, access: AccessEntry[]): Promise<{ token: string; issuedAt: number; expiresIn: number }> {
    const now = Math.floor(this.s.now() / 1000);
    const ctx = principalContext(principal);
    const token = await new SignJWT({ access, context: ctx })
      .setProtectedHeader({ alg: 'RS256', kid: this.signing!.kid, typ: 'JWT' })
      .setIssuer(ISSUER).setAudience(audience).setSubject(principal.kind === 'anonymous' ? '(anonymous)' : principal.username)
      .setIssuedAt(now).setNotBefore(now).setExpirationTime(now + TOKEN_TTL_SECONDS).setJti(randomUUID())
      .sign(this.signing!.privateKey);
    return { token, issuedAt: now, expiresIn: TOKEN_TTL_SECONDS };
  }

  /** Verifies signature, expiry and audience with a key we hold; null when the token is not ours or invalid. */
  async verify(token: string, audience: string): Promise<VerifiedToken | null> {
    let kid: string | undefined;
    try {
      kid = decodeProtectedHeader(token).kid;
    } catch {
      return null;
    }
    if (!kid) return null;
    // Also picks up keys created, approved, expired or deleted on another replica.
    await this.refreshIfStale();
    const entry = this.verifiers.get(kid);
    if (!entry || (entry.expiresAt !== null && entry.expiresAt <= this.s.now())) return null;
    try {
      const { payload } = await jwtVerify(token, entry.key, { algorithms: ['RS256'], issuer: ISSUER, audience, clockTolerance: 30, currentDate: new Date(this.s.now()) });
      const access = Array.isArray(payload.access) ? (payload.access as AccessEntry[]) : [];
      return { sub: String(payload.sub), access, principal: principalFromContext(payload.context as TokenContext | undefined, String(payload.sub)) };
    } catch {
      return null;
    }
  }
}

interface TokenContext {
  version: 2;
  entity_kind: string;
  entity_reference: string | null;
  kind: string;
  user: string | null;
  'com.apostille.roots': Record<string, unknown>;
  'com.apostille.root': string;
  quayside: { uid: number; su: boolean; scopes: string[] | null; via: string } | null;
}

function principalContext(p: Principal): TokenContext {
  if (p.kind === 'anonymous') {
    return { version: 2, entity_kind: 'anonymous', entity_reference: null, kind: 'anonymous', user: null, 'com.apostille.roots': {}, 'com.apostille.root': '$disabled', quayside: null };
  }
  const entityKind = p.kind === 'robot' ? 'robot' : p.via === 'oauth' ? 'oauth' : p.via === 'apptoken' ? 'appspecifictoken' : 'user';
  return {
    version: 2, entity_kind: entityKind, entity_reference: p.username, kind: entityKind === 'appspecifictoken' ? 'app_specific_token' : entityKind,
    user: p.username, 'com.apostille.roots': {}, 'com.apostille.root': '$disabled',
    quayside: { uid: p.userId, su: p.superuser, scopes: p.scopes, via: p.via },
  };
}

function principalFromContext(ctx: TokenContext | undefined, sub: string): Principal {
  if (!ctx || !ctx.quayside || ctx.entity_kind === 'anonymous') return { kind: 'anonymous', key: '(anonymous)' };
  const q = ctx.quayside;
  return principalFor({ id: q.uid, username: sub, kind: ctx.entity_kind === 'robot' ? 'robot' : 'user' }, 'jwt', { scopes: q.scopes, superuser: q.su });
}

/** Rebuilds a principal for a user id (e.g. the CLI), with superuser status from config/DB. */
export async function principalForUserId(s: Services, id: number): Promise<Principal | null> {
  const u = await findUserById(s, id);
  if (!u) return null;
  return principalFor(u, 'password', { superuser: isSuperuser(s, u) });
}

export const REGISTRY_SERVICE = SERVICE;
