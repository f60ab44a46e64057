-- Take the callbacks due by now for one dispatcher: each is pushed back by the lease, so another
-- API process does not take it too; the dispatcher sets its real next time when done. A process
-- that dies holding some leaves them due again once the lease has passed.
-- KEYS: the callbacks sorted set
-- ARGV: now, lease (s), most to take
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local until_ = tonumber(ARGV[1]) + tonumber(ARGV[2])
for _, key in ipairs(due) do
  redis.call('ZADD', KEYS[1], until_, key)
end
return due
