-- Give a send whose message the broker lost new task ids, before it is published again.
-- KEYS: record, inflight
-- ARGV: task id, task ids JSON, idle limit (s: the visibility timeout), idempotency key
-- New ids, because the lease owner names one published message (task id and retry): a copy
-- under the old ids would look like the original delivered again, i.e. like a worker that died
-- mid-send, whenever the original still exists (kombu restores unacknowledged messages).
-- Only while the send is still queued or retrying and idle, on the server's clock (TIME), for
-- longer than the limit; the change counts as progress, so the next sweep waits a limit again.
-- Returns 1 when the ids were replaced (publish now), else 0.
local k = KEYS[1]
local f = redis.call('HMGET', k, 'state', 'updated_at', 'retry_at')
if f[1] ~= 'queued' and f[1] ~= 'retrying' then return 0 end
local t = redis.call('TIME')
local now = t[1] + t[2] / 1000000
local idle_since = math.max(tonumber(f[2] or '0'), tonumber(f[3] or '0'))
if idle_since > now - tonumber(ARGV[3]) then return 0 end
local stamp = string.format('%.6f', now)
redis.call('HSET', k, 'task_id', ARGV[1], 'task_ids', ARGV[2], 'updated_at', stamp)
redis.call('HINCRBY', k, 'republished', 1)
redis.call('ZADD', KEYS[2], stamp, ARGV[4])
return 1
