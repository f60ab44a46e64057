-- Under the send lease, just before Engage is called: is the recipient opted out, or over its cap?
-- KEYS: record, suppressions hash, cap sorted set ('' slot unused when ARGV[3] is '0')
-- ARGV: owner, suppression digest ('' when the lane is not checked), cap limit ('0': no cap),
--       cap window (ms), idempotency key
-- Returns 'ok' (the cap counted this send), 'suppressed', 'capped' or 'lost' (lease not ours).
-- The cap counts on the Redis clock, one member per idempotency key, so a retried send of the
-- same key is counted once.
if redis.call('HGET', KEYS[1], 'lease_owner') ~= ARGV[1] then return 'lost' end
if ARGV[2] ~= '' and redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 'suppressed' end
local limit = tonumber(ARGV[3])
if limit > 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local window = tonumber(ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. string.format('%.0f', now - window))
  if not redis.call('ZSCORE', KEYS[3], ARGV[5]) then
    if redis.call('ZCARD', KEYS[3]) >= limit then return 'capped' end
    redis.call('ZADD', KEYS[3], string.format('%.0f', now), ARGV[5])
  end
  redis.call('PEXPIRE', KEYS[3], window)
end
return 'ok'
