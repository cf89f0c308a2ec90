// GET /authrepoemail?code= (Quay's web.confirm_repo_email, FEATURE_MAILING): the link of a
// repository e-mail authorization; a valid code confirms the address for the repository's
// e-mail notifications.
import type { FastifyReply } from 'fastify';
import type { HttpContext } from '../context.ts';
import type { AppInstance } from '../api/route.ts';
import { confirmEmailAuthorization } from '../../model/authorized-emails.ts';
import { escapeHtml } from '../../model/mailer.ts';

function page(reply: FastifyReply, status: number, text: string): FastifyReply {
  const body = `<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>E-mail authorization</title></head>`
    + `<body style="font-family: sans-serif; max-width: 40em; margin: 2em auto"><p>${escapeHtml(text)}</p></body></html>\n`;
  return reply.code(status).type('text/html; charset=utf-8').header('Cache-Control', 'no-store').header('X-Frame-Options', 'DENY').send(body);
}

export async function registerWebAuthorizedEmail(app: AppInstance, ctx: HttpContext): Promise<void> {
  if (!ctx.services.config.features.MAILING) return;
  app.get('/authrepoemail', async (req, reply) => {
    const code = (req.query as Record<string, unknown>).code;
    if (typeof code !== 'string' || code === '') return page(reply, 400, 'Missing authorization code.');
    const done = await confirmEmailAuthorization(ctx.services, code);
    if (!done) return page(reply, 200, 'Invalid confirm code: This code is invalid or may have already been used.');
    return page(reply, 200, `Your e-mail address ${done.email} has been authorized to receive notifications for repository ${done.repository}.`);
  });
}
