-- A completion callback was published: take it out of the callbacks set, unless it became due
-- again meanwhile (a second final state, e.g. sent after an outcome_unknown dead letter).
-- KEYS: callbacks
-- ARGV: idempotency key, the score it was read with
-- Returns 1 when removed.
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0
