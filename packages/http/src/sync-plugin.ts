/**
 * A Fastify plugin (through fastify-plugin, so its hooks and decorations
 * apply to the parent) whose set-up is synchronous: an error thrown while
 * setting up (bad options) fails `register` with that error instead of
 * escaping as an exception.
 */
import type { FastifyInstance, FastifyPluginCallback, FastifyPluginOptions } from 'fastify';
import fp from 'fastify-plugin';

export function syncPlugin<O extends FastifyPluginOptions>(name: string, setUp: (app: FastifyInstance, options: O) => void): FastifyPluginCallback<O> {
  function plugin(app: FastifyInstance, options: O, done: (error?: Error) => void): void {
    try {
      setUp(app, options);
    } catch (error) {
      done(error as Error);
      return;
    }
    done();
  }
  return fp<O>(plugin, { fastify: '5.x', name });
}
