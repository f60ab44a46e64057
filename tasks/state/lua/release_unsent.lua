-- Give back a lease no request went out under: Redis failed between taking it and sendSingle.
-- KEYS: record, inflight
-- ARGV: owner, lease token (of that very taking of the lease), error, seconds until the retry,
--       idempotency key
-- Times are the Redis server's (TIME).
-- Returns 1 when given back; 0 when the record is not sending under that lease (finished, gone,
-- taken since by another delivery, or the lease never reached this primary before a failover).
local k = KEYS[1]
local f = redis.call('HMGET', k, 'state', 'lease_owner', 'lease_token')
if f[1] ~= 'sending' or f[2] ~= ARGV[1] or not f[3] or f[3] == '' or f[3] ~= ARGV[2] then
  return 0
end
local t = redis.call('TIME')
local now = t[1] + t[2] / 1000000
local stamp = string.format('%.6f', now)
redis.call('HSET', k, 'state', 'retrying', 'updated_at', stamp, 'last_error', ARGV[3],
  'retry_at', string.format('%.6f', now + tonumber(ARGV[4])))
redis.call('HSETNX', k, 'first_failure_at', stamp)
redis.call('HDEL', k, 'lease_owner', 'lease_until', 'lease_token')
redis.call('ZADD', KEYS[2], stamp, ARGV[5])
return 1
