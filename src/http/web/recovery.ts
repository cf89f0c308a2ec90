// GET /recovery?code= (Quay's web.confirm_recovery, FEATURE_MAILING): the link of a recovery
// e-mail. A valid code signs its user in (a fresh login, so PUT /api/v1/user/ can set a new
// password right away) and redirects to the account's password settings.
import type { FastifyReply } from 'fastify';
import type { HttpContext } from '../context.ts';
import type { AppInstance } from '../api/route.ts';
import { consumeRecoveryCode } from '../../model/recovery.ts';
import { createSession } from '../../model/sessions.ts';
import { escapeHtml } from '../../model/mailer.ts';
import { issueLoginCookie } from '../session-cookie.ts';

export const INVALID_RECOVERY_CODE = 'Invalid recovery code: This code is invalid or may have already been used.';

function message(reply: FastifyReply, status: number, text: string): FastifyReply {
  const body = `<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Account recovery</title></head>`
    + `<body style="font-family: sans-serif; max-width: 40em; margin: 2em auto"><p>${escapeHtml(text)}</p></body></html>\n`;
  return reply.code(status).type('text/html; charset=utf-8').header('Cache-Control', 'no-store').header('X-Frame-Options', 'DENY').send(body);
}

export async function registerWebRecovery(app: AppInstance, ctx: HttpContext): Promise<void> {
  if (!ctx.services.config.features.MAILING) return;
  app.get('/recovery', async (req, reply) => {
    const code = (req.query as Record<string, unknown>).code;
    if (typeof code !== 'string') return message(reply, 400, 'Missing recovery code.');
    const user = await consumeRecoveryCode(ctx.services, code);
    if (!user) return message(reply, 200, INVALID_RECOVERY_CODE);
    if (!user.enabled) return message(reply, 200, 'Could not perform login.');
    const { sid, row } = await createSession(ctx.services, user);
    issueLoginCookie(ctx, req, reply, sid, row, user);
    return reply.code(302).header('Cache-Control', 'no-store')
      .header('Location', `/user/${encodeURIComponent(user.username)}?tab=settings&action=password`).send();
  });
}
