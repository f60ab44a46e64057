-- to_retrying(k, inflight, key, err, delay): the record at k gives its lease back and waits for
-- its retry: state retrying, retry_at delay seconds from the Redis server's TIME, the error kept,
-- and the key's time in the in-flight set.
local function to_retrying(k, inflight, key, err, delay)
  local t = redis.call('TIME')
  local now = t[1] + t[2] / 1000000
  local stamp = string.format('%.6f', now)
  redis.call('HSET', k, 'state', 'retrying', 'updated_at', stamp, 'last_error', err,
    'retry_at', string.format('%.6f', now + tonumber(delay)))
  redis.call('HSETNX', k, 'first_failure_at', stamp)
  redis.call('HDEL', k, 'lease_owner', 'lease_until', 'lease_token')
  redis.call('ZADD', inflight, stamp, key)
end
