/**
 * Writes a problem as the reply: `application/problem+json`, the problem's
 * status and headers, and the request id as an extension member so a client
 * can quote it. The body is serialised here, so a route's response schema
 * never filters a problem's members.
 */
import type { FastifyReply } from 'fastify';
import type { ProblemDetails } from './problem-error.js';

/** The media type of every kit error response. */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

/** Sends `problem` on `reply` (with `headers`), tagging it with the request id. */
export function sendProblem(reply: FastifyReply, problem: ProblemDetails, headers?: Readonly<Record<string, string>>): FastifyReply {
  if (headers !== undefined) reply.headers(headers);
  const body = problem.requestId === undefined ? { ...problem, requestId: reply.request.id } : problem;
  return reply.code(problem.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(body));
}
