-- Count one failed Engage call of a step in the send's record.
-- KEYS: record
-- ARGV: the record field counting this step's failures
-- Returns the count; 1 without a record (nothing written: never a partial record).
if redis.call('EXISTS', KEYS[1]) == 0 then return 1 end
return redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
