// Shapes the superuser endpoints share: Quay's superuser user_view and organization view.
import { Type } from 'typebox';
import type { Services } from '../../model/context.ts';
import type { User } from '../../model/accounts.ts';
import { isGlobalReadonlySuperuser, isSuperuser } from '../../model/accounts.ts';
import { namespaceQuotas, quotaReport } from '../../model/profile.ts';
import { Nullable } from './route.ts';
import { AvatarSchema, avatar, userAvatar } from './shapes.ts';

const QuotaView = Type.Object({
  id: Type.Integer(),
  limit_bytes: Type.Integer(),
  limits: Type.Array(Type.Object({ id: Type.Integer(), type: Type.String(), limit_percent: Type.Integer() })),
});
const QuotaReport = Type.Object({
  quota_bytes: Type.Integer(), configured_quota: Nullable(Type.Integer()), running_backfill: Type.String(), backfill_status: Type.String(),
});

export const SuperuserUserView = Type.Object({
  kind: Type.String(),
  name: Type.String(),
  username: Type.String(),
  email: Nullable(Type.String()),
  verified: Type.Boolean(),
  avatar: AvatarSchema,
  super_user: Type.Boolean(),
  global_readonly_super_user: Type.Boolean(),
  enabled: Type.Boolean(),
  quotas: Type.Optional(Type.Array(QuotaView)),
  quota_report: Type.Optional(QuotaReport),
  encrypted_password: Type.Optional(Type.String()),
}, { description: 'A user as seen by superusers' });

export const OrgView = Type.Object({
  name: Type.String(),
  email: Type.String(),
  avatar: AvatarSchema,
  quotas: Type.Optional(Type.Array(QuotaView)),
  quota_report: Type.Optional(QuotaReport),
});

function quotasShown(s: Services): boolean {
  return s.config.features.QUOTA_MANAGEMENT && s.config.features.EDIT_QUOTA;
}

/** Quay's superuser user_view (superuser_models_interface.User.to_dict). */
export async function superuserUserView(s: Services, u: User): Promise<Record<string, unknown>> {
  const view: Record<string, unknown> = {
    kind: 'user', name: u.username, username: u.username, email: u.email, verified: u.verified === 1,
    avatar: userAvatar(s, u), super_user: isSuperuser(s, u), global_readonly_super_user: isGlobalReadonlySuperuser(s, u), enabled: u.enabled === 1,
  };
  if (quotasShown(s)) {
    view.quotas = await namespaceQuotas(s, u.id);
    view.quota_report = await quotaReport(s, u.id);
  }
  return view;
}

export async function orgView(s: Services, org: User): Promise<Record<string, unknown>> {
  const view: Record<string, unknown> = { name: org.username, email: org.email ?? '', avatar: avatar(s, org.username, org.email, 'org') };
  if (quotasShown(s)) {
    view.quotas = await namespaceQuotas(s, org.id);
    view.quota_report = await quotaReport(s, org.id);
  }
  return view;
}

