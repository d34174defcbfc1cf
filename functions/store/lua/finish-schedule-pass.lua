--[[
  finishSchedulePass: release the scheduling lease only if no trigger arrived during
  the pass. ARGV[4] lease token ARGV[5] dirty generation the pass started from.
  Returns 'done' (lease released, done := generation) or 'again' (dirty moved on:
  the caller keeps the lease and runs one more pass) or 'lost' (the lease expired
  and another process holds it: stop; that process will see the trigger).
]]
if redis.call('GET', K.scheduleLease) ~= ARGV[4] then return 'lost' end
local dirty = redis.call('GET', K.scheduleDirty) or '0'
if dirty ~= ARGV[5] then return 'again' end
redis.call('SET', K.scheduleDone, ARGV[5])
redis.call('DEL', K.scheduleLease)
return 'done'
