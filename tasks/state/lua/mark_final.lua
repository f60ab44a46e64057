-- End a send without sending it: expired, capped or suppressed (final, with its callback).
-- KEYS: record, inflight, callbacks, deferred
-- ARGV: state, detail, idempotency key, retention (ms), owner ('' when no lease was taken)
-- Times are the Redis server's (TIME).
-- Returns 1 when done; 0 when the send is already final, unknown, or leased by another delivery.
--#include slim_record
local k, key = KEYS[1], ARGV[3]
local f = redis.call('HMGET', k, 'state', 'lease_owner', 'on_done')
local state = f[1]
if not state or state == 'sent' or state == 'dead_lettered' or state == 'expired'
   or state == 'capped' or state == 'suppressed' then return 0 end
if state == 'sending' and f[2] ~= ARGV[5] then return 0 end
local t = redis.call('TIME')
local now = string.format('%.6f', t[1] + t[2] / 1000000)
-- ARGV[2], the detail, is the log's: a status names the end by its state.
redis.call('HSET', k, 'state', ARGV[1], 'updated_at', now)
-- A final record keeps what idempotency and status need (lib/slim_record.lua).
slim_record(k, 'updated_at', ARGV[4])
redis.call('ZREM', KEYS[2], key)
redis.call('ZREM', KEYS[4], key)
if f[3] then redis.call('ZADD', KEYS[3], now, key) end
return 1
