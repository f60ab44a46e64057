-- Engage accepted the send: final.
-- KEYS: record, inflight, dlq, dlq entries, dlq reasons
-- ARGV: now, retention (ms), idempotency key
local k, key = KEYS[1], ARGV[3]
redis.call('HSET', k, 'state', 'sent', 'sent_at', ARGV[1], 'updated_at', ARGV[1])
redis.call('HDEL', k, 'lease_owner', 'lease_until', 'reason', 'detail')
redis.call('PEXPIRE', k, ARGV[2])
redis.call('ZREM', KEYS[2], key)
-- A send can only have been dead-lettered meanwhile as "outcome unknown": now it is known.
-- All three dead-letter keys, or depth by reason would count it forever.
redis.call('ZREM', KEYS[3], key)
redis.call('HDEL', KEYS[4], key)
redis.call('HDEL', KEYS[5], key)
return 1
