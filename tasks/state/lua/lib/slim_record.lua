-- slim_record(k, time_field, ttl): rewrite the final record at k to what idempotency and status
-- need (data minimisation): not the request in clear, not the chain's task ids or the counters.
-- time_field names the record's time of the end ('updated_at', 'sent_at'); ttl is in ms.
-- Rewritten rather than trimmed: once a long value made the hash a hashtable, Redis never turns
-- it back into its compact listpack by itself. A 64-bit prefix of the fingerprint is enough to
-- tell another request under the key apart.
local function slim_record(k, time_field, ttl)
  local fields = {'state', 'fingerprint', 'created_at', time_field, 'contact_id', 'recipient',
    'task_id', 'attempts', 'priority', 'on_done'}
  local kept = {}
  local values = redis.call('HMGET', k, unpack(fields))
  for i, name in ipairs(fields) do
    local value = values[i]
    if value then
      if name == 'fingerprint' then value = string.sub(value, 1, 16) end
      if name == 'created_at' or name == time_field then
        value = string.format('%.3f', tonumber(value))
      end
      -- The lane of a record without one is normal (as for records made before lanes).
      if not (name == 'priority' and value == 'normal') then
        table.insert(kept, name); table.insert(kept, value)
      end
    end
  end
  redis.call('DEL', k)
  redis.call('HSET', k, unpack(kept))
  redis.call('PEXPIRE', k, ttl)
end
