-- Hold a queued send in Redis until quiet hours end: state deferred, filed by when it may go.
-- KEYS: record, inflight, deferred
-- ARGV: not before (epoch s), idempotency key, retention (ms); times are the Redis server's (TIME)
-- Returns 1 when deferred; 0 unless the send is queued or retrying.
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'queued' and state ~= 'retrying' then return 0 end
local t = redis.call('TIME')
local now = string.format('%.6f', t[1] + t[2] / 1000000)
redis.call('HSET', KEYS[1], 'state', 'deferred', 'not_before', ARGV[1], 'updated_at', now)
redis.call('HDEL', KEYS[1], 'retry_at')
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[1], ARGV[2])
-- The record outlives the wait: a record gone before its release would lose the send.
local wait = math.max(0, tonumber(ARGV[1]) - tonumber(now))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) + math.floor(wait * 1000))
return 1
