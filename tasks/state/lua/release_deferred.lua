-- A deferred send's window opened: back to queued with new task ids, or expired if its deadline
-- passed meanwhile (final, callback filed).
-- KEYS: record, deferred, inflight, callbacks
-- ARGV: idempotency key, task id, task ids JSON, retention (ms); times are the Redis server's
-- (TIME): the in-flight score the sweep reads included.
-- Returns {'released', request JSON, lane, callback task or ''}, {'expired'} or {'gone'} (no
-- longer deferred).
local k, key = KEYS[1], ARGV[1]
local f = redis.call('HMGET', k, 'state', 'expires_at', 'request', 'priority', 'on_done')
redis.call('ZREM', KEYS[2], key)
if f[1] ~= 'deferred' then return {'gone'} end
local t = redis.call('TIME')
local clock = tonumber(t[1]) + tonumber(t[2]) / 1000000
local now = string.format('%.6f', clock)
if f[2] and tonumber(f[2]) <= clock then
  redis.call('HSET', k, 'state', 'expired', 'detail', 'deadline passed during quiet hours',
    'updated_at', now)
  redis.call('HDEL', k, 'not_before', 'request', 'task_ids', 'queued_at')
  redis.call('PEXPIRE', k, ARGV[4])
  if f[5] then redis.call('ZADD', KEYS[4], now, key) end
  return {'expired'}
end
redis.call('HSET', k, 'state', 'queued', 'task_id', ARGV[2], 'task_ids', ARGV[3],
  'updated_at', now)
redis.call('HDEL', k, 'not_before')
redis.call('PEXPIRE', k, ARGV[4])
redis.call('ZADD', KEYS[3], now, key)
return {'released', f[3], f[4] or 'normal', f[5] or ''}
