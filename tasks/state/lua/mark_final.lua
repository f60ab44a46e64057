-- End a send without sending it: expired, capped or suppressed (final, with its callback).
-- KEYS: record, inflight, callbacks, deferred
-- ARGV: state, detail, now, idempotency key, retention (ms), owner ('' when no lease was taken)
-- Returns 1 when done; 0 when the send is already final, unknown, or leased by another delivery.
local k, key = KEYS[1], ARGV[4]
local f = redis.call('HMGET', k, 'state', 'lease_owner', 'on_done')
local state = f[1]
if not state or state == 'sent' or state == 'dead_lettered' or state == 'expired'
   or state == 'capped' or state == 'suppressed' then return 0 end
if state == 'sending' and f[2] ~= ARGV[6] then return 0 end
redis.call('HSET', k, 'state', ARGV[1], 'detail', ARGV[2], 'updated_at', ARGV[3])
redis.call('HDEL', k, 'lease_owner', 'lease_until', 'retry_at', 'not_before', 'last_error')
-- A final record keeps what idempotency and status need, not the request in clear.
redis.call('HDEL', k, 'request', 'task_ids', 'first_failure_at', 'queued_at')
for _, name in ipairs(redis.call('HKEYS', k)) do
  if string.find(name, '^deliveries:') or string.find(name, '^failures:') then
    redis.call('HDEL', k, name)
  end
end
redis.call('PEXPIRE', k, ARGV[5])
redis.call('ZREM', KEYS[2], key)
redis.call('ZREM', KEYS[4], key)
if f[3] then redis.call('ZADD', KEYS[3], ARGV[3], key) end
return 1
