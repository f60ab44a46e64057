-- Cancel a send that has not started: the final state 'cancelled', its callback filed in the
-- same step. A send being sent (a lease is held) or already final is left as it is.
-- KEYS: record, inflight, callbacks
-- ARGV: idempotency key, retention (ms); times are the Redis server's (TIME)
-- Returns 'cancelled_now', or the state found ('sending', 'sent', 'cancelled', ...), or 'unknown'.
local k, key = KEYS[1], ARGV[1]
local state = redis.call('HGET', k, 'state')
if not state then return 'unknown' end
if state ~= 'queued' and state ~= 'retrying' then return state end
local t = redis.call('TIME')
local now = string.format('%.6f', t[1] + t[2] / 1000000)
redis.call('HSET', k, 'state', 'cancelled', 'updated_at', now, 'cancelled_at', now)
redis.call('HDEL', k, 'lease_owner', 'lease_until', 'retry_at')
redis.call('PEXPIRE', k, ARGV[2])
redis.call('ZREM', KEYS[2], key)
if redis.call('HEXISTS', k, 'on_done') == 1 then redis.call('ZADD', KEYS[3], now, key) end
return 'cancelled_now'
