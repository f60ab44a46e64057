-- Give the lease back after a failure that proves nothing was sent; a retry follows.
-- KEYS: record, inflight
-- ARGV: owner, now, error, retry at, idempotency key
-- Returns 1 when done; 0 when finished, unknown, or leased by another delivery.
local k = KEYS[1]
local state = redis.call('HGET', k, 'state')
if state == 'sent' or state == 'dead_lettered' or state == 'cancelled' or not state then
  return 0
end
-- Sending policy: a deferred send waits in the deferred set; a policy-ended one is final.
if state == 'deferred' or state == 'expired' or state == 'capped' or state == 'suppressed' then
  return 0
end
if state == 'sending' and redis.call('HGET', k, 'lease_owner') ~= ARGV[1] then return 0 end
redis.call('HSET', k, 'state', 'retrying', 'updated_at', ARGV[2], 'last_error', ARGV[3],
  'retry_at', ARGV[4])
redis.call('HSETNX', k, 'first_failure_at', ARGV[2])
redis.call('HDEL', k, 'lease_owner', 'lease_until')
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[5])
return 1
