-- Create the ledger record of a new send, or report the one already there.
-- KEYS: record, inflight
-- ARGV: fingerprint, request JSON, task id, task ids JSON, retention (ms), idempotency key,
--       priority lane, completion callback task ('' for none)
-- Times are the Redis server's (TIME), never a worker's clock.
-- Returns {outcome, state, task id}: outcome 'created', 'exists' or 'conflict' (another request).
-- An existing record keeps its lane and callback: they are not part of the request.
local k = KEYS[1]
if redis.call('EXISTS', k) == 1 then
  local f = redis.call('HMGET', k, 'fingerprint', 'state', 'task_id')
  if f[1] ~= ARGV[1] then return {'conflict', f[2], f[3]} end
  return {'exists', f[2], f[3]}
end
local t = redis.call('TIME')
local now = string.format('%.6f', t[1] + t[2] / 1000000)
redis.call('HSET', k, 'state', 'queued', 'fingerprint', ARGV[1], 'request', ARGV[2],
  'task_id', ARGV[3], 'task_ids', ARGV[4], 'created_at', now, 'updated_at', now,
  'attempts', 0, 'priority', ARGV[7], 'queued_at', now)
if ARGV[8] ~= '' then redis.call('HSET', k, 'on_done', ARGV[8]) end
redis.call('PEXPIRE', k, ARGV[5])
redis.call('ZADD', KEYS[2], now, ARGV[6])
return {'created', 'queued', ARGV[3]}
