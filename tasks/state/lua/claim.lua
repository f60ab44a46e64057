-- Create the ledger record of a new send, or report the one already there.
-- KEYS: record, inflight, suppressions, callbacks, deferred
-- ARGV: fingerprint, request JSON, task id, task ids JSON, retention (ms), idempotency key,
--       priority lane, completion callback task ('' for none), masked recipient, message id,
--       expires in (s, '' for none), send by (epoch s, '' for none), suppression digest ('' when
--       not checked), not before (epoch s, '' when not deferred), create contact ('1'/'0')
-- Times are the Redis server's (TIME), never a worker's clock.
-- Returns {outcome, state, task id}: outcome 'created', 'exists' or 'conflict' (another request).
-- An existing record keeps its lane and callback: they are not part of the request. A new one
-- is 'queued'; 'suppressed' (final, nothing to publish) when the recipient opted out;
-- 'deferred' (held in the deferred set, nothing to publish yet) during quiet hours.
local k = KEYS[1]
if redis.call('EXISTS', k) == 1 then
  local f = redis.call('HMGET', k, 'fingerprint', 'state', 'task_id')
  -- A final record keeps only a 64-bit prefix of the fingerprint.
  if f[1] ~= ARGV[1] and f[1] ~= string.sub(ARGV[1], 1, 16) then
    return {'conflict', f[2], f[3]}
  end
  return {'exists', f[2], f[3]}
end
local t = redis.call('TIME')
local clock = tonumber(t[1]) + tonumber(t[2]) / 1000000
local now = string.format('%.6f', clock)
-- Sending policy: an opted-out recipient's send is final at once, and keeps no request.
if ARGV[9] and ARGV[13] ~= '' and redis.call('HEXISTS', KEYS[3], ARGV[13]) == 1 then
  redis.call('HSET', k, 'state', 'suppressed', 'fingerprint', string.sub(ARGV[1], 1, 16),
    'created_at', string.format('%.3f', clock), 'recipient', ARGV[9],
    'task_id', ARGV[3], 'attempts', 0)
  if ARGV[7] ~= 'normal' then redis.call('HSET', k, 'priority', ARGV[7]) end
  if ARGV[8] ~= '' then
    redis.call('HSET', k, 'on_done', ARGV[8])
    redis.call('ZADD', KEYS[4], now, ARGV[6])
  end
  redis.call('PEXPIRE', k, ARGV[5])
  return {'created', 'suppressed', ARGV[3]}
end
redis.call('HSET', k, 'state', 'queued', 'fingerprint', ARGV[1], 'request', ARGV[2],
  'task_id', ARGV[3], 'task_ids', ARGV[4], 'created_at', now, 'updated_at', now,
  'attempts', 0, 'priority', ARGV[7], 'queued_at', now)
if ARGV[8] ~= '' then redis.call('HSET', k, 'on_done', ARGV[8]) end
redis.call('PEXPIRE', k, ARGV[5])
-- Sending policy (README: Sending policy): what a slim final record shows, the deadline (on the
-- Redis clock), the quiet-hours deferral.
if ARGV[9] then
  redis.call('HSET', k, 'recipient', ARGV[9], 'message_id', ARGV[10])
  if ARGV[15] == '1' then redis.call('HSET', k, 'create_contact', '1') end
  if ARGV[11] ~= '' then
    redis.call('HSET', k, 'expires_at', string.format('%.3f', clock + tonumber(ARGV[11])))
  elseif ARGV[12] ~= '' then
    redis.call('HSET', k, 'expires_at', ARGV[12])
  end
  if ARGV[14] ~= '' then
    redis.call('HSET', k, 'state', 'deferred', 'not_before', ARGV[14])
    redis.call('ZADD', KEYS[5], ARGV[14], ARGV[6])
    -- The record outlives the wait: a record gone before its release would lose the send.
    local wait = math.max(0, tonumber(ARGV[14]) - clock)
    redis.call('PEXPIRE', k, tonumber(ARGV[5]) + math.floor(wait * 1000))
    return {'created', 'deferred', ARGV[3]}
  end
end
redis.call('ZADD', KEYS[2], now, ARGV[6])
return {'created', 'queued', ARGV[3]}
