// Service keys (Quay's superuser "Service Keys" panel): RS256 public keys that other services use
// to sign JWTs this registry accepts. Quay generates the key pair, stores only the public JWK and
// hands the private key to the caller once. Keys of the registry's own service that are approved
// and not expired verify registry bearer tokens (RegistryKeys), so every change here refreshes the
// key cache of this replica at once; other replicas pick it up on their next periodic refresh.
import { KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { Selectable } from 'kysely';
import type { ServiceKeysTable } from '../db/schema.ts';
import type { Principal, Services } from './context.ts';
import { findUserById, type User } from './accounts.ts';
import { DomainError } from './errors.ts';
import { logAction } from './logs.ts';

export type ServiceKeyRow = Selectable<ServiceKeysTable>;

/** Quay's ServiceKeyApprovalType values, as its API shows them. */
export const APPROVAL_SUPERUSER = 'Super User API';
export const APPROVAL_AUTOMATIC = 'Automatic';

// Quay's VALID_SERVICE_KEY_NAME_REGEX.
const NAME_RE = /^[\s a-zA-Z0-9\-_:/]*$/;

/** What RegistryKeys exposes to the model: reload trusted keys now. */
export interface KeyCache {
  refresh(): Promise<void>;
}

export interface Approval {
  approver: User | null;
  approvalType: string;
  approvedAt: number | null;
  notes: string;
}

export interface ServiceKey {
  kid: string;
  name: string | null;
  service: string;
  jwk: Record<string, unknown>;
  metadata: Record<string, unknown>;
  createdAt: number;
  expiresAt: number | null;
  rotationDuration: number | null;
  approval: Approval | null;
}

interface StoredApproval {
  approver_id?: number | null;
  approval_type?: string;
  approved_date?: number | null;
  notes?: string;
}

function parseObject(text: string | null): Record<string, unknown> {
  if (!text) return {};
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

async function toServiceKey(s: Services, row: ServiceKeyRow): Promise<ServiceKey> {
  let approval: Approval | null = null;
  if (row.approval !== null) {
    const a = parseObject(row.approval) as StoredApproval;
    const approver = typeof a.approver_id === 'number' ? (await findUserById(s, a.approver_id)) ?? null : null;
    // The instance key written by RegistryKeys records itself as 'automatic'.
    const type = a.approval_type === 'automatic' || !a.approval_type ? APPROVAL_AUTOMATIC : a.approval_type;
    approval = { approver, approvalType: type, approvedAt: a.approved_date ?? null, notes: a.notes ?? '' };
  }
  return {
    kid: row.kid, name: row.name, service: row.service, jwk: parseObject(row.jwk), metadata: parseObject(row.metadata),
    createdAt: row.created_at, expiresAt: row.expires_at, rotationDuration: row.rotation_duration, approval,
  };
}

export function validServiceKeyName(name: string | null | undefined): boolean {
  return name === null || name === undefined || NAME_RE.test(name);
}

/** Every key, approved or not, expired or not (Quay's list_all_keys), oldest first. */
export async function listServiceKeys(s: Services): Promise<ServiceKey[]> {
  const rows = await s.db.selectFrom('service_keys').selectAll().orderBy('created_at').orderBy('kid').execute();
  const out: ServiceKey[] = [];
  for (const r of rows) out.push(await toServiceKey(s, r));
  return out;
}

export async function getServiceKey(s: Services, kid: string): Promise<ServiceKey | null> {
  const row = await s.db.selectFrom('service_keys').selectAll().where('kid', '=', kid).executeTakeFirst();
  return row ? toServiceKey(s, row) : null;
}

async function instanceKid(s: Services): Promise<string | null> {
  const row = await s.db.selectFrom('settings').select('value').where('key', '=', 'instance_service_key_kid').executeTakeFirst();
  return row?.value ?? null;
}

/** Seconds since the epoch (Quay's `expiration` field) to epoch ms, refusing the past. */
function expirationMs(s: Services, seconds: number, pastMessage: string): number {
  const ms = seconds * 1000;
  // Python's datetime stops at year 9999; the API says so rather than storing nonsense.
  if (!Number.isFinite(ms) || Math.abs(ms) > 253402300799_000) throw new DomainError('invalid_request', 'Invalid expiration date: year is out of range');
  if (ms <= s.now()) throw new DomainError('invalid_request', pastMessage);
  return Math.floor(ms);
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export interface CreateServiceKeyInput {
  service: string;
  name?: string;
  metadata?: Record<string, unknown>;
  notes?: string;
  /** Unix seconds, or null for a key that never expires. */
  expiration: number | null;
  /** The approving superuser; null leaves the key pending (not trusted until approved). */
  approver: User | null;
}

export interface CreatedServiceKey {
  kid: string;
  name: string;
  service: string;
  publicKeyPem: string;
  privateKeyPem: string;
}

/**
 * Generates an RS256 key pair, stores the public JWK and returns the private key (never stored).
 * With an approver the key is approved at once, as Quay's superuser panel does.
 */
export async function createServiceKey(
  s: Services, input: CreateServiceKeyInput, ctx: { performer: Principal; ip?: string | null; keys?: KeyCache | null },
): Promise<CreatedServiceKey> {
  const name = input.name ?? '';
  if (!validServiceKeyName(name)) throw new DomainError('invalid_request', `Invalid service key friendly name: ${name}`);
  const expiresAt = input.expiration === null ? null : expirationMs(s, input.expiration, 'Expiration date cannot be in the past');

  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true, modulusLength: 2048 });
  const pub = await exportJWK(publicKey);
  const jwk: JWK = { kty: pub.kty, n: pub.n, e: pub.e };
  const kid = await calculateJwkThumbprint(jwk);
  const creator = ctx.performer.kind === 'anonymous' ? null : ctx.performer.username;
  const metadata = { ...(input.metadata ?? {}), created_by: 'Quay Superuser Panel', creator, ip: ctx.ip ?? null };
  const now = s.now();
  const approval = input.approver
    ? JSON.stringify({ approver_id: input.approver.id, approval_type: APPROVAL_SUPERUSER, approved_date: now, notes: input.notes ?? '' } satisfies StoredApproval)
    : null;
  const logMeta = {
    kid, preshared: true, service: input.service, name, expiration_date: iso(expiresAt), auto_approved: approval !== null,
  };

  await s.db.transaction().execute(async (tx) => {
    await tx.insertInto('service_keys').values({
      kid, name, service: input.service, jwk: JSON.stringify(jwk), private_jwk_enc: null, metadata: JSON.stringify(metadata),
      created_at: now, expires_at: expiresAt, rotation_duration: null, approval,
    }).execute();
    await logAction(s, 'service_key_create', { performer: ctx.performer, ip: ctx.ip, metadata: logMeta }, tx);
    if (approval) await logAction(s, 'service_key_approve', { performer: ctx.performer, ip: ctx.ip, metadata: logMeta }, tx);
  });
  await ctx.keys?.refresh();

  // Quay returns SubjectPublicKeyInfo and "TraditionalOpenSSL" (PKCS#1) PEMs.
  return {
    kid, name, service: input.service,
    publicKeyPem: KeyObject.from(publicKey).export({ type: 'spki', format: 'pem' }).toString(),
    privateKeyPem: KeyObject.from(privateKey).export({ type: 'pkcs1', format: 'pem' }).toString(),
  };
}

/** Approves a pending key. 'already' when it was approved before (Quay then changes and logs nothing). */
export async function approveServiceKey(
  s: Services, kid: string, approver: User, notes: string, ctx: { performer: Principal; ip?: string | null; keys?: KeyCache | null },
): Promise<'approved' | 'already'> {
  const outcome = await s.db.transaction().execute(async (tx) => {
    const row = await tx.selectFrom('service_keys').selectAll().where('kid', '=', kid).executeTakeFirst();
    if (!row) throw new DomainError('not_found', 'Not Found');
    if (row.approval !== null) return 'already' as const;
    const approval: StoredApproval = { approver_id: approver.id, approval_type: APPROVAL_SUPERUSER, approved_date: s.now(), notes };
    // Only a still-pending row is approved: a concurrent approval wins once.
    const res = await tx.updateTable('service_keys').set({ approval: JSON.stringify(approval) })
      .where('kid', '=', kid).where('approval', 'is', null).executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) return 'already' as const;
    await logAction(s, 'service_key_approve', {
      performer: ctx.performer, ip: ctx.ip,
      metadata: { kid, service: row.service, name: row.name, expiration_date: iso(row.expires_at) },
    }, tx);
    return 'approved' as const;
  });
  if (outcome === 'approved') await ctx.keys?.refresh();
  return outcome;
}

export interface UpdateServiceKeyInput {
  name?: string;
  metadata?: Record<string, unknown>;
  /** Present: unix seconds or null (never expires). Absent: unchanged. */
  expiration?: number | null;
}

/** Renames, merges metadata into, or re-dates a key (Quay's PUT, validated before anything changes). */
export async function updateServiceKey(
  s: Services, kid: string, input: UpdateServiceKeyInput, ctx: { performer: Principal; ip?: string | null; keys?: KeyCache | null },
): Promise<ServiceKey> {
  const row = await s.db.selectFrom('service_keys').selectAll().where('kid', '=', kid).executeTakeFirst();
  if (!row) throw new DomainError('not_found', 'Not Found');
  const changesExpiration = Object.hasOwn(input, 'expiration');
  let expiresAt = row.expires_at;
  if (changesExpiration) {
    expiresAt = input.expiration === null || input.expiration === undefined
      ? null : expirationMs(s, input.expiration, 'Cannot have an expiration date in the past');
    // The registry signs its own tokens with this key; expiring it would make them unverifiable.
    if (expiresAt !== null && kid === await instanceKid(s)) {
      throw new DomainError('invalid_request', "Cannot set an expiration on this registry's own signing key");
    }
  }
  const changesNameOrMetadata = input.name !== undefined || input.metadata !== undefined;
  if (changesNameOrMetadata && !validServiceKeyName(input.name)) {
    throw new DomainError('invalid_request', `Invalid service key friendly name: ${input.name}`);
  }

  const baseMeta = { kid, service: row.service, name: input.name ?? row.name, expiration_date: iso(row.expires_at) };
  await s.db.transaction().execute(async (tx) => {
    if (changesExpiration) {
      await tx.updateTable('service_keys').set({ expires_at: expiresAt }).where('kid', '=', kid).execute();
      await logAction(s, 'service_key_extend', {
        performer: ctx.performer, ip: ctx.ip, metadata: { ...baseMeta, old_expiration_date: iso(row.expires_at), expiration_date: iso(expiresAt) },
      }, tx);
    }
    if (changesNameOrMetadata) {
      const set: { name?: string; metadata?: string } = {};
      if (input.name !== undefined) set.name = input.name;
      if (input.metadata !== undefined) set.metadata = JSON.stringify({ ...parseObject(row.metadata), ...input.metadata });
      await tx.updateTable('service_keys').set(set).where('kid', '=', kid).execute();
      await logAction(s, 'service_key_modify', { performer: ctx.performer, ip: ctx.ip, metadata: baseMeta }, tx);
    }
  });
  if (changesExpiration) await ctx.keys?.refresh();
  return (await getServiceKey(s, kid))!;
}

/** Deletes a key; tokens it signed stop verifying as soon as the key caches refresh. */
export async function deleteServiceKey(
  s: Services, kid: string, ctx: { performer: Principal; ip?: string | null; keys?: KeyCache | null },
): Promise<void> {
  if (kid === await instanceKid(s)) {
    throw new DomainError('invalid_request', "Cannot delete this registry's own signing key");
  }
  await s.db.transaction().execute(async (tx) => {
    const row = await tx.selectFrom('service_keys').selectAll().where('kid', '=', kid).executeTakeFirst();
    if (!row) throw new DomainError('not_found', 'Not Found');
    await tx.deleteFrom('service_keys').where('kid', '=', kid).execute();
    await logAction(s, 'service_key_delete', {
      performer: ctx.performer, ip: ctx.ip,
      metadata: { kid, service: row.service, name: row.name, created_date: iso(row.created_at), expiration_date: iso(row.expires_at) },
    }, tx);
  });
  await ctx.keys?.refresh();
}
