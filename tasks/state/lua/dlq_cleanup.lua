-- Drop dead-letter entries past the age bound, and hash fields left without a sorted-set member.
-- KEYS: dlq, dlq entries, dlq reasons
-- ARGV: max age (s; entries dead-lettered longer ago, by the server's clock, go)
-- Returns how many entries went by age.
local dlq, entries, reasons = KEYS[1], KEYS[2], KEYS[3]
local t = redis.call('TIME')
local cutoff = t[1] + t[2] / 1000000 - tonumber(ARGV[1])
local old = redis.call('ZRANGEBYSCORE', dlq, '-inf', '(' .. string.format('%.6f', cutoff))
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
