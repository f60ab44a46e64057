-- Create the ledger record of a new send, or report the one already there.
-- KEYS: record, inflight
-- ARGV: fingerprint, request JSON, task id, task ids JSON, now, retention (ms), idempotency key,
--       priority lane, completion callback task ('' for none)
-- Returns {outcome, state, task id}: outcome 'created', 'exists' or 'conflict' (another request).
-- An existing record keeps its lane and callback: they are not part of the request.
local k = KEYS[1]
if redis.call('EXISTS', k) == 1 then
  local f = redis.call('HMGET', k, 'fingerprint', 'state', 'task_id')
  if f[1] ~= ARGV[1] then return {'conflict', f[2], f[3]} end
  return {'exists', f[2], f[3]}
end
redis.call('HSET', k, 'state', 'queued', 'fingerprint', ARGV[1], 'request', ARGV[2],
  'task_id', ARGV[3], 'task_ids', ARGV[4], 'created_at', ARGV[5], 'updated_at', ARGV[5],
  'attempts', 0, 'priority', ARGV[8], 'queued_at', ARGV[5])
if ARGV[9] ~= '' then redis.call('HSET', k, 'on_done', ARGV[9]) end
redis.call('PEXPIRE', k, ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[7])
return {'created', 'queued', ARGV[3]}
