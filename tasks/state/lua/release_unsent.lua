-- Give back a lease no request went out under: Redis failed between taking it and sendSingle.
-- KEYS: record, inflight
-- ARGV: owner, lease token (of that very taking of the lease), error, seconds until the retry,
--       idempotency key
-- Times are the Redis server's (TIME).
-- Returns 1 when given back; 0 when the record is not sending under that lease (finished, gone,
-- taken since by another delivery, or the lease never reached this primary before a failover).
--#include to_retrying
local k = KEYS[1]
local f = redis.call('HMGET', k, 'state', 'lease_owner', 'lease_token')
if f[1] ~= 'sending' or f[2] ~= ARGV[1] or not f[3] or f[3] == '' or f[3] ~= ARGV[2] then
  return 0
end
to_retrying(k, KEYS[2], ARGV[5], ARGV[3], ARGV[4])
return 1
