/**
 * The upstream layer of the gateway: discovery, health, outlier ejection,
 * load balancing, shuffle sharding, and the canary traffic split.
 *
 * Choices worth knowing:
 * - Eligible instance: not ejected and not `unhealthy`. Before its first
 *   health check an instance is `unknown` and eligible; the first verdict
 *   counts at once, later ones go through the thresholds.
 * - `exclude` is honoured when some eligible instance is left; otherwise an
 *   excluded one is picked again (a retry on the same instance beats a 503).
 * - Shuffle sharding: a tenant's shard is fixed by rendezvous hashing over
 *   all instances (ejected ones included, so ejections do not reshuffle
 *   tenants). Within the shard, `exclude` is honoured when possible; a
 *   retry stays in the shard. Only when no shard member is eligible does
 *   the tenant spill to the rest of the pool (`shardFallback: 'pool'`,
 *   default), or get no instance (`'none'`).
 * - Outlier ejection never exceeds `maxEjectionPercent` (rounded down); the
 *   n-th ejection lasts n × base, capped; the count restarts once an
 *   instance has stayed in for longer than the cap.
 * - Active health checks have no such cap: if every instance fails its
 *   check, `pick` returns undefined.
 */
export type { AttemptOutcome, Instance, InstanceStatus, Lease, PickContext, UpstreamService } from './types.js';
export {
  createUpstream,
  httpCheck,
  type Upstream,
  type UpstreamOptions,
  type UpstreamEvent,
  type BalancerKind,
  type HealthCheckOptions,
  type OutlierEjectionOptions,
} from './upstream.js';
export { staticDiscovery } from '../discovery/static.js';
export type { DiscoverySource, StaticInstance } from '../discovery/types.js';
export {
  gatewayMigrations,
  registerInstance,
  registryDiscovery,
  liveInstances,
  pruneInstances,
  type GatewayTables,
  type RegisterInstance,
  type RegistrationOptions,
  type Registration,
  type RegistryDiscoveryOptions,
} from '../discovery/registry.js';
export { createTrafficSplit, type TrafficSplit, type TrafficSplitOptions, type SplitRequest, type Side } from './traffic-split.js';
