-- Hold a queued send in Redis until quiet hours end: state deferred, filed by when it may go.
-- KEYS: record, inflight, deferred
-- ARGV: not before (epoch s), now, idempotency key, retention (ms)
-- Returns 1 when deferred; 0 unless the send is queued or retrying.
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'queued' and state ~= 'retrying' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'deferred', 'not_before', ARGV[1], 'updated_at', ARGV[2])
redis.call('HDEL', KEYS[1], 'retry_at')
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[1], ARGV[3])
-- The record outlives the wait: a record gone before its release would lose the send.
local wait = math.max(0, tonumber(ARGV[1]) - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]) + math.floor(wait * 1000))
return 1
