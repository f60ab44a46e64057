-- What a step checks before it calls Engage, in one round trip.
-- KEYS: record, then any keys to read (the credentials flag, the cached contact id)
-- ARGV: the record field counting this attempt's deliveries
-- Returns {state or false, deliveries, value of KEYS[2], ..., expired}; an unknown record counts
-- nothing. The last element is 1 when the record's deadline (expires_at) passed on the Redis clock.
local state = redis.call('HGET', KEYS[1], 'state')
local deliveries = 0
if state then deliveries = redis.call('HINCRBY', KEYS[1], ARGV[1], 1) end
local reply = {state, deliveries}
for i = 2, #KEYS do reply[i + 1] = redis.call('GET', KEYS[i]) end
local expires_at = redis.call('HGET', KEYS[1], 'expires_at')
local expired = 0
if expires_at then
  local t = redis.call('TIME')
  if tonumber(expires_at) <= tonumber(t[1]) + tonumber(t[2]) / 1000000 then expired = 1 end
end
reply[#KEYS + 2] = expired
return reply
