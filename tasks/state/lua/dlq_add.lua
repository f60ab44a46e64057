-- Dead-letter a send: flip its ledger record and file the entry, then trim by age and size.
-- KEYS: record, dlq, dlq entries, dlq reasons, inflight, callbacks
-- ARGV: idempotency key, reason, detail, entry JSON (an object, without its times), record TTL
--       (ms), max age (s), max entries
-- Returns 1; 0 when the send was sent meanwhile (a sent send is never moved). A completion
-- callback the send asked for is filed in the callbacks set in the same step. Times (the entry's,
-- the score, the age bound) are the Redis server's (TIME).
local ledger, dlq, entries, reasons, inflight = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local key, reason = ARGV[1], ARGV[2]
if redis.call('HGET', ledger, 'state') == 'sent' then return 0 end
local t = redis.call('TIME')
local now = t[1] + t[2] / 1000000
local stamp = string.format('%.6f', now)
local first = redis.call('HGET', ledger, 'first_failure_at') or stamp
-- Appended as text: decoding and encoding the entry would turn its empty lists into objects.
local entry = string.sub(ARGV[4], 1, -2) .. ', "first_failure_at": ' .. first ..
  ', "last_failure_at": ' .. stamp .. '}'
redis.call('HSET', ledger, 'state', 'dead_lettered', 'reason', reason, 'detail', ARGV[3],
  'updated_at', stamp)
redis.call('HDEL', ledger, 'lease_owner', 'lease_until', 'retry_at')
-- The record must outlive its dead-letter entry, or a replay could not know it was not sent.
redis.call('PEXPIRE', ledger, ARGV[5])
redis.call('ZREM', inflight, key)
if redis.call('HEXISTS', ledger, 'on_done') == 1 then redis.call('ZADD', KEYS[6], stamp, key) end
redis.call('ZADD', dlq, stamp, key)
redis.call('HSET', entries, key, entry)
redis.call('HSET', reasons, key, reason)
local function drop(members)
  for _, m in ipairs(members) do
    redis.call('ZREM', dlq, m); redis.call('HDEL', entries, m); redis.call('HDEL', reasons, m)
  end
end
drop(redis.call('ZRANGEBYSCORE', dlq, '-inf', '(' .. string.format('%.6f', now - tonumber(ARGV[6]))))
local extra = redis.call('ZCARD', dlq) - tonumber(ARGV[7])
if extra > 0 then drop(redis.call('ZRANGE', dlq, 0, extra - 1)) end
return 1
