/**
 * The SLO engine over HTTP, as a Fastify plugin: what a console or an
 * operator's `curl` reads in embedded mode, where there is no Prometheus.
 *
 * - `GET /slos`: the status of every SLO (budget, burn rates, conditions, firing alerts);
 * - `GET /slos/:name`: one SLO, or 404 `application/problem+json`;
 * - `GET /alerts`: `{ firing, history }`, the alerts firing now and the recent transitions.
 *
 * Register it under a prefix: `app.register(sloRoutes, { engine, prefix: '/admin' })`.
 */
import type { FastifyPluginCallback } from 'fastify';
import type { SloEngine } from './engine.js';
import { isSloNotFoundError } from './errors.js';

export interface SloRoutesOptions {
  engine: SloEngine;
}

/** The Fastify plugin; see the module comment. */
export const sloRoutes: FastifyPluginCallback<SloRoutesOptions> = (app, { engine }, done) => {
  app.get('/slos', (_request, reply) => {
    void reply.send({ slos: engine.statuses() });
  });

  app.get<{ Params: { name: string } }>('/slos/:name', (request, reply) => {
    try {
      void reply.send(engine.status(request.params.name));
    } catch (error) {
      if (!isSloNotFoundError(error)) throw error;
      void reply
        .code(404)
        .type('application/problem+json')
        .send({ type: 'https://bulwark.dev/problems/slo-not-found', title: 'SLO not found', status: 404, detail: error.message, code: error.code });
    }
  });

  app.get('/alerts', (_request, reply) => {
    void reply.send({ firing: engine.alerts(), history: engine.history() });
  });
  done();
};
