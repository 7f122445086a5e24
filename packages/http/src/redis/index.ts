/** `@bulwark/http/redis`: the Redis `RateLimitStore` (ioredis), for rate limits shared by several instances. */
export { RedisRateLimitStore, RateLimitStoreUnavailableError, isRateLimitStoreUnavailableError, type RedisRateLimitStoreOptions } from './redis-rate-limit-store.js';
