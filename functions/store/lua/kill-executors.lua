--[[
  killExecutors: KillExecutors — kill the listed executors of an app.
  ARGV[4] appId ARGV[5] JSON array of executor ids (integers; the handler drops others)
  Returns 1 for a known active app (unknown executor ids are ignored), 0 otherwise.
]]
local appId = ARGV[4]
local state = redis.call('HGET', K.app(appId), 'state')
if not state or not isAppActive(state) then return 0 end
for _, execId in ipairs(cjson.decode(ARGV[5])) do
  local exec = readExecutor(appId, execId)
  -- a DECOMMISSIONED executor is no longer the app's (Spark's app.executors): not the app's to kill
  if exec and not isExecutorFinished(exec.state) and exec.state ~= 'DECOMMISSIONED' then killExecutor(appId, exec) end
end
markDirty()
return 1
