-- Under the send lease, just before Engage is called: is the lease still ours, is the recipient
-- opted out, or over its cap? On 'ok' the lease is renewed for a whole call from now.
-- KEYS: record, suppressions hash, cap sorted set ('' slot unused when ARGV[3] is '0')
-- ARGV: owner, suppression digest ('' when the lane is not checked), cap limit ('0': no cap),
--       cap window (ms), idempotency key, lease (s)
-- Returns 'ok' (the cap counted this send, the lease renewed), 'suppressed', 'capped' or 'lost'
-- (the send is not 'sending' under this owner's lease any more: do not call Engage).
-- The cap counts on the Redis clock, one member per idempotency key, so a retried send of the
-- same key is counted once.
-- The renewal: the lease was taken a few round trips ago (more on a starved worker thread), and
-- the call's deadline plus the lease margin must fit in what is left of it, or a live send is
-- taken for a dead one. A lease found lapsed but still this owner's was acted on by nobody
-- (taking it over or dead-lettering it changes the owner or the state, in one step that checks
-- it is still lapsed), so nothing was sent under it and renewing it is safe.
local f = redis.call('HMGET', KEYS[1], 'state', 'lease_owner')
if f[1] ~= 'sending' or f[2] ~= ARGV[1] then return 'lost' end
if ARGV[2] ~= '' and redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 'suppressed' end
local t = redis.call('TIME')
local limit = tonumber(ARGV[3])
if limit > 0 then
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local window = tonumber(ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. string.format('%.0f', now - window))
  if not redis.call('ZSCORE', KEYS[3], ARGV[5]) then
    if redis.call('ZCARD', KEYS[3]) >= limit then return 'capped' end
    redis.call('ZADD', KEYS[3], string.format('%.0f', now), ARGV[5])
  end
  redis.call('PEXPIRE', KEYS[3], window)
end
redis.call('HSET', KEYS[1], 'lease_until',
  string.format('%.6f', t[1] + t[2] / 1000000 + tonumber(ARGV[6])))
return 'ok'
