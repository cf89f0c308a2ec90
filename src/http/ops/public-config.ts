// GET /config: what the web UI and clients may know about this installation. Only keys on Quay's
// CLIENT_WHITELIST leave the server, so no secret (DATABASE_SECRET_KEY, SECRET_KEY, DB_URI,
// storage credentials, mail passwords) can ever appear here.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { createRequire } from 'node:module';
import { serverHost, type HttpContext } from '../context.ts';
import type { AppInstance } from '../api/route.ts';
import { publicLoginConfig } from '../../model/login-providers.ts';

// Quay's config.CLIENT_WHITELIST. FEATURE_* entries are reported from the features map.
export const CLIENT_WHITELIST = [
  'SERVER_HOSTNAME', 'PREFERRED_URL_SCHEME', 'MIXPANEL_KEY', 'STRIPE_PUBLISHABLE_KEY', 'ENTERPRISE_LOGO_URL',
  'ENTERPRISE_LOGO_URL_DARK', 'SENTRY_PUBLIC_DSN', 'AUTHENTICATION_TYPE', 'REGISTRY_TITLE', 'REGISTRY_TITLE_SHORT',
  'CONTACT_INFO', 'AVATAR_KIND', 'LOCAL_OAUTH_HANDLER', 'SETUP_COMPLETE', 'DEBUG', 'MARKETO_MUNCHKIN_ID',
  'STATIC_SITE_BUCKET', 'RECAPTCHA_SITE_KEY', 'CHANNEL_COLORS', 'TAG_EXPIRATION_OPTIONS', 'INTERNAL_OIDC_SERVICE_ID',
  'SEARCH_RESULTS_PER_PAGE', 'SEARCH_MAX_RESULT_PAGE_COUNT', 'BRANDING', 'DOCUMENTATION_ROOT', 'FEATURE_REPO_MIRROR',
  'FEATURE_ORG_MIRROR', 'FEATURE_QUOTA_MANAGEMENT', 'FEATURE_QUOTA_NOTIFICATIONS', 'FEATURE_EDIT_QUOTA',
  'FEATURE_PROXY_CACHE', 'QUOTA_BACKFILL', 'PERMANENTLY_DELETE_TAGS', 'UI_V2_FEEDBACK_FORM', 'FOOTER_LINKS',
  'UI_DELAY_AFTER_WRITE_SECONDS', 'FEATURE_ASSIGN_OAUTH_TOKEN', 'FEATURE_IMAGE_EXPIRY_TRIGGER', 'FEATURE_AUTO_PRUNE',
  'DEFAULT_NAMESPACE_AUTOPRUNE_POLICY', 'DEFAULT_UI', 'DISABLE_ANGULAR_UI', 'ROBOTS_DISALLOW', 'FEATURE_IMMUTABLE_TAGS_CAN_EXPIRE',
] as const;

// Quay's DefaultConfig values for whitelisted keys, so the UI sees the same defaults.
const DEFAULTS: Record<string, unknown> = {
  AUTHENTICATION_TYPE: 'Database',
  AVATAR_KIND: 'local',
  CONTACT_INFO: [],
  LOCAL_OAUTH_HANDLER: '/oauth/localapp',
  TAG_EXPIRATION_OPTIONS: ['0s', '1d', '1w', '2w', '4w'],
  SEARCH_RESULTS_PER_PAGE: 10,
  SEARCH_MAX_RESULT_PAGE_COUNT: 10,
  PERMANENTLY_DELETE_TAGS: true,
  SETUP_COMPLETE: true,
};

const version = (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;

export function publicConfig(ctx: HttpContext, req: FastifyRequest): Record<string, unknown> {
  const cfg = ctx.services.config;
  const raw = cfg.raw;
  const config: Record<string, unknown> = {};
  for (const key of CLIENT_WHITELIST) {
    if (/secret/i.test(key)) continue; // Quay refuses to whitelist anything named like a secret
    if (key.startsWith('FEATURE_')) config[key] = cfg.features[key.slice(8)] === true;
    else if (raw[key] !== undefined && raw[key] !== null) config[key] = raw[key];
    else if (key in DEFAULTS) config[key] = DEFAULTS[key];
  }
  config.SERVER_HOSTNAME = serverHost(ctx, req);
  config.PREFERRED_URL_SCHEME = cfg.preferredUrlScheme;
  config.AUTHENTICATION_TYPE = cfg.authenticationType;
  config.REGISTRY_TITLE = cfg.registryTitle;
  config.REGISTRY_TITLE_SHORT = typeof raw.REGISTRY_TITLE_SHORT === 'string' ? raw.REGISTRY_TITLE_SHORT : cfg.registryTitle;
  config.REGISTRY_STATE = cfg.registryState;
  if (typeof raw.ENTERPRISE_LOGO_URL === 'string') {
    config.BRANDING = { ...((config.BRANDING as Record<string, unknown> | undefined) ?? {}), logo: raw.ENTERPRISE_LOGO_URL };
  }
  return {
    config,
    features: { ...cfg.features },
    oauth: {},
    external_login: publicLoginConfig(ctx.services),
    registry_state: cfg.registryState,
    account_recovery_mode: raw.ACCOUNT_RECOVERY_MODE === true,
    version_number: `Quayside ${version}`,
  };
}

function cors(reply: FastifyReply): FastifyReply {
  return reply
    .header('Access-Control-Allow-Origin', '*')
    .header('Access-Control-Allow-Methods', 'GET, OPTIONS')
    .header('Access-Control-Allow-Headers', 'Authorization, Content-Type, X-Requested-With')
    .header('Access-Control-Max-Age', '21600');
}

export function registerPublicConfig(app: AppInstance, ctx: HttpContext): void {
  app.get('/config', async (req, reply) => cors(reply).header('Cache-Control', 'no-cache').send(publicConfig(ctx, req)));
  app.options('/config', async (_req, reply) => cors(reply).code(200).send());
}
