// POST /api/v1/superuser/shutdown (Quay's SuperUserShutdown): Quay signals its container's init so
// the orchestrator restarts it, e.g. with a changed configuration. Quayside stops the way SIGTERM
// stops it (in-flight requests finish, exit code 0) and leaves the restart to its supervisor.
import { Type } from 'typebox';
import { shutdownDecision } from '../../model/superuser.ts';
import { PlainError } from './abort.ts';
import { defineRoute, type AnyRoute } from './route.ts';
import { FORBIDDEN_MESSAGE } from './superuser-access.ts';

export const shutdownRoutes: AnyRoute[] = [
  defineRoute({
    method: 'POST', path: '/superuser/shutdown', nickname: 'scShutdownContainer', tag: 'suconfig', features: ['SUPER_USERS'], internal: true,
    description: 'Sends a signal to the phusion init system to shut down the container.',
    response: Type.Object({}),
    async handler(req, reply, env) {
      const decision = await shutdownDecision(env.ctx.services, req.principal);
      if (decision === 'denied') throw new PlainError(403, FORBIDDEN_MESSAGE);
      if (decision === 'ignored') return {};
      // With no handler installed SIGTERM would kill the process outright instead of draining it;
      // Quay fails the same way (500) when there is no init process to signal.
      if (process.listenerCount('SIGTERM') === 0) throw new Error('no SIGTERM handler: cannot shut down gracefully');
      const user = req.principal.kind === 'user' ? req.principal.username : null;
      req.log.warn({ user }, 'shutdown requested through /api/v1/superuser/shutdown');
      // Once the answer is out (or the caller has gone), so the caller still gets its {}.
      reply.raw.once('close', () => process.kill(process.pid, 'SIGTERM'));
      return {};
    },
  }),
];
