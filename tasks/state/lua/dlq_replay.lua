-- Take an entry out of the dead-letter store and put its send back to queued, same key.
-- KEYS: record, dlq, dlq entries, dlq reasons, inflight, callbacks (unused), over bound
-- ARGV: idempotency key, task id, task ids JSON, retention (ms); times are the server's (TIME)
-- Returns {'requeued', request JSON}, {'missing', ''}, or {state, ''} when the record has moved
-- on (sent, or queued again by another replay): the entry is dropped in every case but missing.
local ledger, dlq, entries, reasons, inflight = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local key = ARGV[1]
local entry = redis.call('HGET', entries, key)
if not entry then
  -- An entry that left the listing at the size bound: its record still holds the request.
  if not redis.call('ZSCORE', KEYS[7], key) then return {'missing', ''} end
  redis.call('ZREM', KEYS[7], key)
  local r = redis.call('HMGET', ledger, 'state', 'request', 'fingerprint')
  if r[1] ~= 'dead_lettered' or not r[2] then return {'missing', ''} end
  entry = cjson.encode({request = cjson.decode(r[2]), fingerprint = r[3]})
end
redis.call('ZREM', dlq, key); redis.call('HDEL', entries, key); redis.call('HDEL', reasons, key)
local state = redis.call('HGET', ledger, 'state')
if state == 'sent' then return {'sent', ''} end
if state and state ~= 'dead_lettered' then return {state, ''} end
local e = cjson.decode(entry)
local t = redis.call('TIME')
local now = string.format('%.6f', t[1] + t[2] / 1000000)
redis.call('HSET', ledger, 'state', 'queued', 'request', cjson.encode(e['request']),
  'fingerprint', e['fingerprint'], 'task_id', ARGV[2], 'task_ids', ARGV[3], 'updated_at', now,
  'attempts', 0)
redis.call('HSET', ledger, 'queued_at', now)
-- The lane and the callback come back with the entry if the record lost them (it expired).
if e['priority'] and e['priority'] ~= cjson.null then
  redis.call('HSETNX', ledger, 'priority', e['priority'])
end
if e['on_done'] and e['on_done'] ~= cjson.null then
  redis.call('HSETNX', ledger, 'on_done', e['on_done'])
end
redis.call('HSETNX', ledger, 'created_at', now)
redis.call('HINCRBY', ledger, 'replays', 1)
redis.call('HDEL', ledger, 'reason', 'detail', 'last_error', 'retry_at', 'first_failure_at')
redis.call('PEXPIRE', ledger, ARGV[4])
redis.call('ZADD', inflight, now, key)
return {'requeued', cjson.encode(e['request'])}
