-- Reserve the next slot of a GCRA rate limit, or only say how far it is.
-- KEYS: the limit's string (theoretical arrival time, µs on the Redis clock)
-- ARGV: interval (µs), tolerance (µs), max wait (µs), reserve ('1'/'0')
-- Returns {granted (1/0), delay (µs)}.
-- Everything in whole microseconds: Lua numbers are doubles, exact up to 2**53 (year 2255 in
-- microseconds), while tostring() would round to 14 digits, hence the explicit '%.0f'.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next_tat = tat + tonumber(ARGV[1])
local start = next_tat - tonumber(ARGV[2])
if start < now then start = now end
local delay = start - now
if ARGV[4] ~= '1' or delay > tonumber(ARGV[3]) then return {0, delay} end
-- Once the TAT is in the past the key says nothing a missing key would not: let it go then.
local ttl_ms = math.floor((next_tat - now) / 1000) + 1
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', string.format('%d', ttl_ms))
return {1, delay}
