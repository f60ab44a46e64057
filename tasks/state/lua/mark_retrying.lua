-- Give the lease back after a failure that proves nothing was sent; a retry follows.
-- KEYS: record, inflight
-- ARGV: owner, error, seconds until the retry, idempotency key
-- Times are the Redis server's (TIME).
-- Returns 1 when done; 0 when finished, unknown, or leased by another delivery.
--#include to_retrying
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
to_retrying(k, KEYS[2], ARGV[4], ARGV[2], ARGV[3])
return 1
