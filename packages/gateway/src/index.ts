/**
 * `@bulwark/gateway`: the front door of a services topology. Routing by host,
 * path and headers; per-route deadline, retry (with a budget), breaker, rate
 * limit and JWT auth; canary split and shuffle sharding; a streaming proxy on
 * `node:http` with its own keep-alive HTTP/1.1 upstream client; an
 * authenticated admin listener; a JSON configuration validated at start-up and
 * reloadable at runtime.
 *
 * @example
 * ```ts
 * import { createGateway } from '@bulwark/gateway';
 * const gateway = await createGateway({ configPath: './gateway.json' });
 * const { port, adminPort } = await gateway.listen();
 * // later: kill -HUP <pid>, or POST /admin/reload, or:
 * await gateway.reload();
 * ```
 */
export {
  createGateway,
  GATEWAY_REQUEST_CHANNEL,
  GATEWAY_UPSTREAM_CHANNEL,
  GATEWAY_CONFIG_CHANNEL,
  type Gateway,
  type GatewayOptions,
  type GatewayCounters,
  type GatewayRequestEvent,
  type GatewayConfigEvent,
} from './runtime.js';
export {
  validateConfig,
  loadConfigFile,
  GatewayConfigError,
  type GatewayConfig,
  type RouteConfig,
  type RouteMatch,
  type RouteRewrite,
  type RetryConfig,
  type BreakerConfig,
  type RateLimitConfig,
  type AuthRequirement,
  type CanaryConfig,
  type UpstreamConfig,
} from './config.js';
export { gatewayProblemTypes, gatewayProblem, type GatewayProblemSlug, type GatewayProblemType } from './problems.js';
export { VerifiedTokenCache, type TokenCacheStats } from './token-cache.js';
export { RouteTable, compileMatcher, type MatchResult } from './routing.js';
export type { AttemptOutcome, Instance, InstanceStatus, Lease, PickContext, UpstreamService } from './balancing/types.js';
