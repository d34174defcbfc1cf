--[[
  requestExecutors: RequestExecutors — set the app's executor limit (target total).
  ARGV[4] appId ARGV[5] requested total. Returns 1 for a known active app, else 0.
  Lowering the target never kills executors (the app kills with KillExecutors).
]]
local state = redis.call('HGET', K.app(ARGV[4]), 'state')
if not state or not isAppActive(state) then return 0 end
redis.call('HSET', K.app(ARGV[4]), 'executorLimit', ARGV[5])
markDirty()
return 1
