-- Agree on the Engage budget at a worker's start: the stored one, or this worker's when it is
-- smaller (a worker with no limit of its own, interval 0, only reads).
-- KEYS: the budget hash
-- ARGV: this worker's rate (calls/s), burst, interval (µs), tolerance (µs)
-- Returns {rate, burst} in force after this call, as text; {false, false} when none is set.
local k = KEYS[1]
local stored = redis.call('HMGET', k, 'rate', 'burst', 'interval_us')
local interval = tonumber(ARGV[3])
if interval > 0 and (not stored[3] or interval > tonumber(stored[3])) then
  redis.call('HSET', k, 'rate', ARGV[1], 'burst', ARGV[2], 'interval_us', ARGV[3],
    'tolerance_us', ARGV[4])
  return {ARGV[1], ARGV[2]}
end
return {stored[1] or false, stored[2] or false}
