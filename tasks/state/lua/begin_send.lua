-- Take the send lease, or say why not.
-- KEYS: record, inflight, then keys that block the send while they exist (the credentials flag)
-- ARGV: owner (names one published message: task id and retry), lease (s), resend interrupted
--       ('1'/'0'), contact id, idempotency key, lease token (names this taking of the lease, so
--       its taker can give back this lease and no later one: lua/release_unsent.lua)
-- The lease and the deadline run on the Redis server's clock (TIME): a worker's clock, however
-- wrong, never decides whether another worker's lease has lapsed or a deadline has passed.
-- Returns {outcome, attempts}: 'acquired', 'sent', 'dead_lettered', 'cancelled', 'busy',
-- 'interrupted', 'blocked' or 'missing'; 'interrupted' (and 'acquired' after one) adds when the
-- lapsed lease ran out. With the sending policy also 'expired' (the record's deadline passed, on
-- the Redis clock: nothing was taken), or the state of a send that is 'deferred' or ended
-- 'expired', 'capped' or 'suppressed'.
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
local t = redis.call('TIME')
local now = t[1] + t[2] / 1000000
local expires_at = redis.call('HGET', k, 'expires_at')
if expires_at then
  if tonumber(expires_at) <= now then
    return {'expired', attempts}
  end
end
for i = 3, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then return {'blocked', attempts} end
end
if state == 'sending' then
  -- Only a lapsed lease means the holder died mid-send. A second delivery of the same message
  -- proves nothing: kombu hands a message out again while its holder still runs (a worker whose
  -- clock is ahead restores it early, the sweep publishes a copy): busy, and if the holder did
  -- die, its lease lapses and the sweep settles it.
  if tonumber(f[3]) > now then return {'busy', attempts} end
  if ARGV[3] ~= '1' then return {'interrupted', attempts, f[3]} end
end
attempts = attempts + 1
redis.call('HSET', k, 'state', 'sending', 'lease_owner', ARGV[1],
  'lease_until', string.format('%.6f', now + tonumber(ARGV[2])), 'attempts', attempts,
  'updated_at', string.format('%.6f', now), 'contact_id', ARGV[4], 'lease_token', ARGV[6] or '')
redis.call('ZADD', KEYS[2], string.format('%.6f', now), ARGV[5])
return {'acquired', attempts}
