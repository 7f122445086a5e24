/**
 * The Lua scripts of the Redis rate-limit store: one per algorithm, each a
 * port of the memory store's arithmetic in `@bulwark/resilience` (same
 * units, same rounding), reading the server's `TIME` so every instance agrees
 * on one clock. A script reads and writes one hash key atomically; refusals
 * change nothing but the bucket's drain bookkeeping. Keys expire once the
 * allowance is fully restored, so idle identities cost no memory.
 *
 * Every script returns `{allowed, limit, remaining, resetMs, retryAfterMs, delayMs}`
 * as integers, with `retryAfterMs = -1` for "never" (a cost above the limit).
 */

const prelude = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function up(x) if x > 0 then return math.ceil(x) end return 0 end
`;

/** Token bucket and leaky bucket (both the GCRA): ARGV capacity, rate (units/ms), unit (ms per request), cost, maxDelayMs (-1: none), leaky (0|1). */
export const bucketScript = `${prelude}
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local unit = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local maxDelay = tonumber(ARGV[5])
local leaky = ARGV[6] == '1'
local s = redis.call('HMGET', KEYS[1], 'used', 'at')
local used = tonumber(s[1]) or 0
local at = tonumber(s[2]) or now
if now > at then
  used = used - (now - at) * rate
  if used < 0 then used = 0 end
  at = now
end
local full = capacity * unit
local need = cost * unit
local wait = 0
if leaky then wait = used / rate end
local fits = used + need <= full and (maxDelay < 0 or wait <= maxDelay)
local result
if fits then
  used = used + need
  result = {1, capacity, math.floor((full - used) / unit), up(used / rate), 0, up(wait)}
else
  local retry
  if cost > capacity then retry = -1
  else
    retry = (used + need - full) / rate
    if leaky and maxDelay >= 0 and wait - maxDelay > retry then retry = wait - maxDelay end
    retry = up(retry)
  end
  result = {0, capacity, math.floor((full - used) / unit), up(used / rate), retry, 0}
end
if used > 0 then
  redis.call('HSET', KEYS[1], 'used', string.format('%.17g', used), 'at', string.format('%d', at))
  redis.call('PEXPIRE', KEYS[1], up(used / rate) + 1000)
else
  redis.call('DEL', KEYS[1])
end
return result
`;

/** Sliding-window counter: ARGV limit, windowMs, cost. */
export const slidingWindowScript = `${prelude}
local limit = tonumber(ARGV[1])
local w = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local s = redis.call('HMGET', KEYS[1], 'window', 'current', 'previous')
local window = tonumber(s[1])
local current = tonumber(s[2]) or 0
local previous = tonumber(s[3]) or 0
local index = math.floor(now / w)
if window ~= nil and window > index then index = window end
if window == nil or index ~= window then
  if window ~= nil and index == window + 1 then previous = current else previous = 0 end
  current = 0
  window = index
end
local elapsed = now - index * w
if elapsed < 0 then elapsed = 0 end
if elapsed > w then elapsed = w end
local room = limit * w - previous * (w - elapsed) - current * w
local result
local function resetMs()
  if current > 0 then return 2 * w - elapsed end
  if previous > 0 then return w - elapsed end
  return 0
end
if cost * w <= room then
  current = current + cost
  result = {1, limit, math.floor((room - cost * w) / w), up(resetMs()), 0, 0}
else
  local retry
  if cost > limit then retry = -1
  else
    local spare = limit - current - cost
    if spare > 0 and previous > 0 then retry = w - (spare * w) / previous - elapsed
    else
      local into = 0
      if current > 0 then into = w - ((limit - cost) * w) / current; if into < 0 then into = 0 end end
      retry = w - elapsed + into
    end
    retry = up(retry)
  end
  local remaining = math.floor(room / w)
  if remaining < 0 then remaining = 0 end
  result = {0, limit, remaining, up(resetMs()), retry, 0}
end
redis.call('HSET', KEYS[1], 'window', string.format('%d', window), 'current', current, 'previous', previous)
redis.call('PEXPIRE', KEYS[1], 2 * w + 1000)
return result
`;

/** Fixed window: ARGV limit, windowMs, cost. */
export const fixedWindowScript = `${prelude}
local limit = tonumber(ARGV[1])
local w = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local s = redis.call('HMGET', KEYS[1], 'window', 'current')
local window = tonumber(s[1])
local current = tonumber(s[2]) or 0
local index = math.floor(now / w)
if window ~= nil and window > index then index = window end
if window == nil or index ~= window then
  window = index
  current = 0
end
local untilNext = (index + 1) * w - now
local result
if current + cost <= limit then
  current = current + cost
  local reset = 0
  if current > 0 then reset = untilNext end
  result = {1, limit, limit - current, up(reset), 0, 0}
else
  local reset = 0
  if current > 0 then reset = untilNext end
  local retry = up(untilNext)
  if cost > limit then retry = -1 end
  result = {0, limit, limit - current, up(reset), retry, 0}
end
redis.call('HSET', KEYS[1], 'window', string.format('%d', window), 'current', current)
redis.call('PEXPIRE', KEYS[1], w + 1000)
return result
`;
