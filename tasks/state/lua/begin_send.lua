-- Take the send lease, or say why not.
-- KEYS: record, inflight, then keys that block the send while they exist (the credentials flag)
-- ARGV: owner (task id and retry), now, lease (s), resend interrupted ('1'/'0'), contact id,
--       idempotency key
-- Returns {outcome, attempts}: 'acquired', 'sent', 'dead_lettered', 'cancelled', 'busy',
-- 'interrupted', 'blocked' or 'missing'; with the sending policy also 'expired' (the record's
-- deadline passed, on the Redis clock: nothing was taken), or the state of a send that is
-- 'deferred' or ended 'expired', 'capped' or 'suppressed'.
local k = KEYS[1]
local f = redis.call('HMGET', k, 'state', 'lease_owner', 'lease_until', 'attempts')
local state, attempts = f[1], tonumber(f[4] or '0')
if not state then return {'missing', 0} end
if state == 'sent' or state == 'dead_lettered' or state == 'cancelled' then
  return {state, attempts}
end
-- Sending policy: a deferred or policy-ended send is not sent; a passed deadline takes nothing.
if state == 'deferred' or state == 'expired' or state == 'capped' or state == 'suppressed' then
  return {state, attempts}
end
local expires_at = redis.call('HGET', k, 'expires_at')
if expires_at then
  local t = redis.call('TIME')
  if tonumber(expires_at) <= tonumber(t[1]) + tonumber(t[2]) / 1000000 then
    return {'expired', attempts}
  end
end
for i = 3, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then return {'blocked', attempts} end
end
if state == 'sending' then
  -- The same attempt delivered again, or a lapsed lease, means the holder died mid-send.
  local interrupted = f[2] == ARGV[1] or tonumber(f[3]) <= tonumber(ARGV[2])
  if not interrupted then return {'busy', attempts} end
  if ARGV[4] ~= '1' then return {'interrupted', attempts} end
end
attempts = attempts + 1
redis.call('HSET', k, 'state', 'sending', 'lease_owner', ARGV[1],
  'lease_until', tonumber(ARGV[2]) + tonumber(ARGV[3]), 'attempts', attempts,
  'updated_at', ARGV[2], 'contact_id', ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[6])
return {'acquired', attempts}
