-- Drop dead-letter entries past the age bound, and hash fields left without a sorted-set member.
-- KEYS: dlq, dlq entries, dlq reasons
-- ARGV: cutoff (epoch seconds; entries dead-lettered before it go)
-- Returns how many entries went by age.
local dlq, entries, reasons = KEYS[1], KEYS[2], KEYS[3]
local old = redis.call('ZRANGEBYSCORE', dlq, '-inf', '(' .. ARGV[1])
for _, m in ipairs(old) do
  redis.call('ZREM', dlq, m); redis.call('HDEL', entries, m); redis.call('HDEL', reasons, m)
end
-- mark_sent once left the reason behind when a dead-lettered send was found sent: this drops
-- such leftovers, which depth by reason would otherwise count forever.
for _, hash in ipairs({entries, reasons}) do
  for _, m in ipairs(redis.call('HKEYS', hash)) do
    if not redis.call('ZSCORE', dlq, m) then redis.call('HDEL', hash, m) end
  end
end
return #old
