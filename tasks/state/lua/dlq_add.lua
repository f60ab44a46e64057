-- Dead-letter a send: flip its ledger record and file the entry, then trim by age and size.
-- KEYS: record, dlq, dlq entries, dlq reasons, inflight, callbacks
-- ARGV: idempotency key, now, reason, detail, entry JSON, record TTL (ms), max age (s),
--       max entries
-- Returns 1; 0 when the send was sent meanwhile (a sent send is never moved). A completion
-- callback the send asked for is filed in the callbacks set in the same step.
local ledger, dlq, entries, reasons, inflight = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local key, now, reason = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local current = redis.call('HGET', ledger, 'state')
if current == 'sent' then return 0 end
-- Sending policy: a send that ended expired, capped or suppressed is final, never a dead letter.
if current == 'expired' or current == 'capped' or current == 'suppressed' then return 0 end
redis.call('HSET', ledger, 'state', 'dead_lettered', 'reason', reason, 'detail', ARGV[4],
  'updated_at', ARGV[2])
redis.call('HDEL', ledger, 'lease_owner', 'lease_until', 'retry_at')
-- The record must outlive its dead-letter entry, or a replay could not know it was not sent.
redis.call('PEXPIRE', ledger, ARGV[6])
redis.call('ZREM', inflight, key)
if redis.call('HEXISTS', ledger, 'on_done') == 1 then redis.call('ZADD', KEYS[6], now, key) end
redis.call('ZADD', dlq, now, key)
redis.call('HSET', entries, key, ARGV[5])
redis.call('HSET', reasons, key, reason)
local function drop(members)
  for _, m in ipairs(members) do
    redis.call('ZREM', dlq, m); redis.call('HDEL', entries, m); redis.call('HDEL', reasons, m)
  end
end
drop(redis.call('ZRANGEBYSCORE', dlq, '-inf', '(' .. (now - tonumber(ARGV[7]))))
local extra = redis.call('ZCARD', dlq) - tonumber(ARGV[8])
if extra > 0 then drop(redis.call('ZRANGE', dlq, 0, extra - 1)) end
return 1
