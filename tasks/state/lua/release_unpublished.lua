-- Undo a claim whose task was never published: only while it is still that task's, and queued.
-- KEYS: record, inflight
-- ARGV: task id, idempotency key
-- Returns 1 when the record was removed.
if redis.call('HGET', KEYS[1], 'task_id') == ARGV[1]
   and redis.call('HGET', KEYS[1], 'state') == 'queued' then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
  return 1
end
return 0
