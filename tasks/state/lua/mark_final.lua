-- End a send without sending it: expired, capped or suppressed (final, with its callback).
-- KEYS: record, inflight, callbacks, deferred
-- ARGV: state, detail, idempotency key, retention (ms), owner ('' when no lease was taken)
-- Times are the Redis server's (TIME).
-- Returns 1 when done; 0 when the send is already final, unknown, or leased by another delivery.
local k, key = KEYS[1], ARGV[3]
local f = redis.call('HMGET', k, 'state', 'lease_owner', 'on_done')
local state = f[1]
if not state or state == 'sent' or state == 'dead_lettered' or state == 'expired'
   or state == 'capped' or state == 'suppressed' then return 0 end
if state == 'sending' and f[2] ~= ARGV[5] then return 0 end
local t = redis.call('TIME')
local now = string.format('%.6f', t[1] + t[2] / 1000000)
-- ARGV[2], the detail, is the log's: a status names the end by its state.
redis.call('HSET', k, 'state', ARGV[1], 'updated_at', now)
-- A final record keeps what idempotency and status need (data minimisation): not the request
-- in clear, not the chain's task ids or the counters. Rewritten rather than trimmed: once a long value made
-- the hash a hashtable, Redis never turns it back into its compact listpack by itself. A
-- 64-bit prefix of the fingerprint is enough to tell another request under the key apart.
local SLIM = {'state', 'fingerprint', 'created_at', 'updated_at', 'contact_id', 'recipient',
  'task_id', 'attempts', 'priority', 'on_done'}
local kept = {}
local values = redis.call('HMGET', k, unpack(SLIM))
for i, name in ipairs(SLIM) do
  local value = values[i]
  if value then
    if name == 'fingerprint' then value = string.sub(value, 1, 16) end
    if name == 'created_at' or name == 'updated_at' then
      value = string.format('%.3f', tonumber(value))
    end
    -- The lane of a record without one is normal (as for records made before lanes).
    if not (name == 'priority' and value == 'normal') then
      table.insert(kept, name); table.insert(kept, value)
    end
  end
end
redis.call('DEL', k)
redis.call('HSET', k, unpack(kept))
redis.call('PEXPIRE', k, ARGV[4])
redis.call('ZREM', KEYS[2], key)
redis.call('ZREM', KEYS[4], key)
if f[3] then redis.call('ZADD', KEYS[3], now, key) end
return 1
