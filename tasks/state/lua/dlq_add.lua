-- Dead-letter a send: flip its ledger record and file the entry, then trim by age and size.
-- KEYS: record, dlq, dlq entries, dlq reasons, inflight, callbacks, over bound
-- ARGV: idempotency key, reason, detail, entry JSON (an object, without its times), record TTL
--       (ms), max age (s), max entries, '1' to move it only while its send lease has lapsed
-- Returns {1, keys moved over the bound...}; 0 when the send was sent or cancelled meanwhile
-- (never moved), or, asked for a lapsed lease, when the send no longer holds one (its holder
-- renewed the lease or gave it back, or another delivery took it); -1 when it has no record (nothing is written: the caller writes it in full
-- first). A completion callback the send asked for is filed in the callbacks set in the same
-- step. Times (the entry's, the score, the age bound) are the Redis server's (TIME).
local ledger, dlq, entries, reasons, inflight = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local key, reason = ARGV[1], ARGV[2]
local state = redis.call('HGET', ledger, 'state')
if not state then return -1 end
if state == 'sent' or state == 'cancelled' then return 0 end
-- Sending policy: a send that ended expired, capped or suppressed is final, never a dead letter.
if state == 'expired' or state == 'capped' or state == 'suppressed' then return 0 end
local t = redis.call('TIME')
local now = t[1] + t[2] / 1000000
-- Whoever saw the lease lapsed read it a moment ago: the holder may have lived after all and
-- renewed or given it back since. Checked here, in the step that moves it, or a live send would
-- be dead-lettered outcome_unknown.
if ARGV[8] == '1' then
  local lease_until = redis.call('HGET', ledger, 'lease_until')
  if state ~= 'sending' or not lease_until or tonumber(lease_until) > now then return 0 end
end
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
local oldest = string.format('%.6f', now - tonumber(ARGV[6]))
drop(redis.call('ZRANGEBYSCORE', dlq, '-inf', '(' .. oldest))
-- At the size bound the oldest entries leave the listing, never without a trace: their keys go
-- to the over-bound set (replay still finds their requests in their ledger records).
local extra = redis.call('ZCARD', dlq) - tonumber(ARGV[7])
local over = {}
if extra > 0 then
  over = redis.call('ZRANGE', dlq, 0, extra - 1)
  drop(over)
  for _, m in ipairs(over) do redis.call('ZADD', KEYS[7], stamp, m) end
end
redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', '(' .. oldest)
return {1, unpack(over)}
