/**
 * Every error answered as RFC 9457 problem+json: Fastify's error handler
 * (route errors, hook errors, parser errors, validation), its not-found
 * handler, and the server's `clientError` handler for requests the HTTP
 * parser refuses before Fastify sees them.
 */
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { kitProblem, renderProblem } from './render-problem.js';
import { PROBLEM_CONTENT_TYPE, sendProblem } from './send-problem.js';

const notFound = kitProblem('not-found', 'No route matches this method and path.');

/** Installs the problem error handler and not-found handler on `fastify`. */
export function installProblemHandlers(fastify: FastifyInstance): void {
  fastify.setErrorHandler(function problemErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
    const { problem, headers } = renderProblem(error);
    if (problem.status >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.info({ status: problem.status, type: problem.type }, 'request refused');
    return sendProblem(reply, problem, headers);
  });
  fastify.setNotFoundHandler(function problemNotFound(_request: FastifyRequest, reply: FastifyReply) {
    return sendProblem(reply, notFound);
  });
}

/**
 * Fastify's `clientErrorHandler` option: a request the HTTP parser refused
 * (bad syntax, headers too large, too slow) gets a problem+json answer
 * written on the socket, which is then closed.
 */
export function problemClientErrorHandler(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const slug = error.code === 'HPE_HEADER_OVERFLOW' ? 'header-too-large' : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'request-timeout' : 'malformed-request';
  const problem = kitProblem(slug);
  if (socket.writable && socket.bytesWritten === 0) {
    const body = JSON.stringify(problem);
    socket.end(`HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status] ?? ''}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  } else {
    socket.destroy(error);
  }
}
