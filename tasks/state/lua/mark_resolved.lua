-- The lookup found the contact: keep its id and show the send is moving; and, in the same round
-- trip, the contact cache's entry for the identifier (when a cache key is given).
-- KEYS: record, inflight[, contact cache key]
-- ARGV: contact id, idempotency key[, cache TTL (ms)]
-- Returns 1 when done; 0 unless the send is queued or retrying (the cache is written either way).
if KEYS[3] then redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[3]) end
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'queued' and state ~= 'retrying' then return 0 end
local t = redis.call('TIME')
local now = string.format('%.6f', t[1] + t[2] / 1000000)
redis.call('HSET', KEYS[1], 'contact_id', ARGV[1], 'updated_at', now)
redis.call('ZADD', KEYS[2], now, ARGV[2])
return 1
