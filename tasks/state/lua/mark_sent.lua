-- Engage accepted the send: final. A callback the send asked for is filed in the same step.
-- KEYS: record, inflight, dlq, dlq entries, dlq reasons, callbacks
-- ARGV: retention (ms), idempotency key
-- Returns {seconds since queued (text) or false, lane or false, callback task filed now or false},
-- on the Redis server's clock (TIME) like every stored time; and a fourth element, 'missing',
-- when there is no record: never a record holding only 'sent'.
--#include slim_record
local k, key = KEYS[1], ARGV[2]
if redis.call('EXISTS', k) == 0 then return {false, false, false, 'missing'} end
local t = redis.call('TIME')
local now = string.format('%.6f', t[1] + t[2] / 1000000)
local f = redis.call('HMGET', k, 'state', 'queued_at', 'created_at', 'priority', 'on_done')
redis.call('HSET', k, 'state', 'sent', 'sent_at', now, 'updated_at', now)
redis.call('HDEL', k, 'lease_owner', 'lease_until', 'reason', 'detail')
redis.call('PEXPIRE', k, ARGV[1])
if redis.call('HEXISTS', k, 'recipient') == 1 then
  -- A final record keeps what idempotency and status need (lib/slim_record.lua).
  slim_record(k, 'sent_at', ARGV[1])
end
redis.call('ZREM', KEYS[2], key)
-- A send can only have been dead-lettered meanwhile as "outcome unknown": now it is known.
-- All three dead-letter keys, or depth by reason would count it forever.
redis.call('ZREM', KEYS[3], key)
redis.call('HDEL', KEYS[4], key)
redis.call('HDEL', KEYS[5], key)
local callback = false
if f[5] and f[1] ~= 'sent' then
  redis.call('ZADD', KEYS[6], now, key)
  callback = f[5]
end
local since = f[2] or f[3]
local waited = false
if since then waited = string.format('%.6f', tonumber(now) - tonumber(since)) end
return {waited, f[4] or false, callback}
