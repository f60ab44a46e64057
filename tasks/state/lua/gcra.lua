-- Reserve the next slot of a GCRA rate limit for a call of one lane, or only say how far it is.
-- KEYS: the limit's string (theoretical arrival time, µs on the Redis clock); the budget hash
--       every worker agreed on (rate_budget.lua); for a lower lane also the lane's "last served"
--       string (µs), which lifts its look-ahead when it is old
-- ARGV: interval (µs; 0: this worker sets no limit of its own), tolerance (µs), look-ahead (µs:
--       the furthest slot this call may book),
--       reserve ('1'/'0'); for a lower lane also its starvation limit (µs) and the look-ahead
--       it gets once starved (µs)
-- Returns {granted (1/0), delay (µs until the slot starts), look-ahead used (µs)}.
-- Everything in whole microseconds: Lua numbers are doubles, exact up to 2**53 (year 2255 in
-- microseconds), while tostring() would round to 14 digits, hence the explicit '%.0f'.
-- The budget is one fact: the stored one applies whenever it is slower than this worker's own.
local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
local budget = redis.call('HMGET', KEYS[2], 'interval_us', 'tolerance_us')
if budget[1] and tonumber(budget[1]) > interval then
  interval, tolerance = tonumber(budget[1]), tonumber(budget[2])
end
if interval == 0 then return {1, 0, 0} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next_tat = tat + interval
local start = next_tat - tolerance
if start < now then start = now end
local delay = start - now
local lookahead = tonumber(ARGV[3])
if KEYS[3] then
  local served = tonumber(redis.call('GET', KEYS[3]) or '0')
  if now - served >= tonumber(ARGV[5]) then lookahead = math.max(lookahead, tonumber(ARGV[6])) end
end
if ARGV[4] ~= '1' or delay > lookahead then return {0, delay, lookahead} end
-- Once the TAT is in the past the key says nothing a missing key would not: let it go then.
local ttl_ms = math.floor((next_tat - now) / 1000) + 1
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', string.format('%d', ttl_ms))
if KEYS[3] then
  local limit_ms = math.floor(tonumber(ARGV[5]) / 1000) + 1
  redis.call('SET', KEYS[3], string.format('%.0f', now), 'PX', string.format('%d', limit_ms))
end
return {1, delay, lookahead}
