-- Dead-letter a send: flip its ledger record and file the entry, then trim by age and size.
-- KEYS: record, dlq, dlq entries, dlq reasons, inflight, callbacks, over bound
-- ARGV: idempotency key, now, reason, detail, entry JSON, record TTL (ms), max age (s),
--       max entries
-- Returns {1, keys moved over the bound...}; 0 when the send was sent or cancelled meanwhile (never moved); -1 when it has no
-- record (nothing is written: the caller writes it in full first). A completion
-- callback the send asked for is filed in the callbacks set in the same step.
local ledger, dlq, entries, reasons, inflight = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local key, now, reason = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local state = redis.call('HGET', ledger, 'state')
if not state then return -1 end
if state == 'sent' or state == 'cancelled' then return 0 end
-- Sending policy: a send that ended expired, capped or suppressed is final, never a dead letter.
if state == 'expired' or state == 'capped' or state == 'suppressed' then return 0 end
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
-- At the size bound the oldest entries leave the listing, never without a trace: their keys go
-- to the over-bound set (replay still finds their requests in their ledger records).
local extra = redis.call('ZCARD', dlq) - tonumber(ARGV[8])
local over = {}
if extra > 0 then
  over = redis.call('ZRANGE', dlq, 0, extra - 1)
  drop(over)
  for _, m in ipairs(over) do redis.call('ZADD', KEYS[7], now, m) end
end
redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', '(' .. (now - tonumber(ARGV[7])))
return {1, unpack(over)}
