-- One Engage call of a send: append its entry, keep the last N, expire with the ledger record.
-- KEYS: attempts list, ledger record
-- ARGV: entry (a JSON object without its time), N, retention (ms) when the record is gone
-- The time is the Redis server's (TIME), as every stored time; returns the list's length.
local t = redis.call('TIME')
local at = string.format('%.3f', t[1] + t[2] / 1000000)
local length = redis.call('RPUSH', KEYS[1], '{"at": ' .. at .. ', ' .. string.sub(ARGV[1], 2))
local limit = tonumber(ARGV[2])
if length > limit then
  redis.call('LTRIM', KEYS[1], -limit, -1)
  length = limit
end
local ttl = redis.call('PTTL', KEYS[2])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
elseif ttl == -1 then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return length
