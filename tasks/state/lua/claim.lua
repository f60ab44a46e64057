-- Create the ledger record of a new send, or report the one already there.
-- KEYS: record, inflight, suppressions, callbacks, deferred
-- ARGV: fingerprint, request JSON, task id, task ids JSON, now, retention (ms), idempotency key,
--       priority lane, completion callback task ('' for none), masked recipient, message id,
--       expires in (s, '' for none), send by (epoch s, '' for none), suppression digest ('' when
--       not checked), not before (epoch s, '' when not deferred), create contact ('1'/'0')
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
-- Sending policy: an opted-out recipient's send is final at once, and keeps no request.
if ARGV[10] and ARGV[14] ~= '' and redis.call('HEXISTS', KEYS[3], ARGV[14]) == 1 then
  redis.call('HSET', k, 'state', 'suppressed', 'fingerprint', string.sub(ARGV[1], 1, 16),
    'created_at', string.format('%.3f', tonumber(ARGV[5])), 'recipient', ARGV[10],
    'task_id', ARGV[3], 'attempts', 0)
  if ARGV[8] ~= 'normal' then redis.call('HSET', k, 'priority', ARGV[8]) end
  if ARGV[9] ~= '' then
    redis.call('HSET', k, 'on_done', ARGV[9])
    redis.call('ZADD', KEYS[4], ARGV[5], ARGV[7])
  end
  redis.call('PEXPIRE', k, ARGV[6])
  return {'created', 'suppressed', ARGV[3]}
end
redis.call('HSET', k, 'state', 'queued', 'fingerprint', ARGV[1], 'request', ARGV[2],
  'task_id', ARGV[3], 'task_ids', ARGV[4], 'created_at', ARGV[5], 'updated_at', ARGV[5],
  'attempts', 0, 'priority', ARGV[8], 'queued_at', ARGV[5])
if ARGV[9] ~= '' then redis.call('HSET', k, 'on_done', ARGV[9]) end
redis.call('PEXPIRE', k, ARGV[6])
-- Sending policy (README: Sending policy): what a slim final record shows, the deadline (on the
-- Redis clock), the quiet-hours deferral.
if ARGV[10] then
  redis.call('HSET', k, 'recipient', ARGV[10], 'message_id', ARGV[11])
  if ARGV[16] == '1' then redis.call('HSET', k, 'create_contact', '1') end
  if ARGV[12] ~= '' then
    local t = redis.call('TIME')
    local at = tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[12])
    redis.call('HSET', k, 'expires_at', string.format('%.3f', at))
  elseif ARGV[13] ~= '' then
    redis.call('HSET', k, 'expires_at', ARGV[13])
  end
  if ARGV[15] ~= '' then
    redis.call('HSET', k, 'state', 'deferred', 'not_before', ARGV[15])
    redis.call('ZADD', KEYS[5], ARGV[15], ARGV[7])
    -- The record outlives the wait: a record gone before its release would lose the send.
    local wait = math.max(0, tonumber(ARGV[15]) - tonumber(ARGV[5]))
    redis.call('PEXPIRE', k, tonumber(ARGV[6]) + math.floor(wait * 1000))
    return {'created', 'deferred', ARGV[3]}
  end
end
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[7])
return {'created', 'queued', ARGV[3]}
