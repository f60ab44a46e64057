-- The lookup found the contact: keep its id and show the send is moving.
-- KEYS: record, inflight
-- ARGV: contact id, now, idempotency key
-- Returns 1 when done; 0 unless the send is queued or retrying.
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'queued' and state ~= 'retrying' then return 0 end
redis.call('HSET', KEYS[1], 'contact_id', ARGV[1], 'updated_at', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return 1
