-- What a step checks before it calls Engage, in one round trip.
-- KEYS: record, then any keys to read (the credentials flag, the cached contact id)
-- ARGV: the record field counting this attempt's deliveries
-- Returns {state or false, deliveries, value of KEYS[2], ...}; an unknown record counts nothing.
local state = redis.call('HGET', KEYS[1], 'state')
local deliveries = 0
if state then deliveries = redis.call('HINCRBY', KEYS[1], ARGV[1], 1) end
local reply = {state, deliveries}
for i = 2, #KEYS do reply[i + 1] = redis.call('GET', KEYS[i]) end
return reply
