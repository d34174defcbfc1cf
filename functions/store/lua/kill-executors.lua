--[[
  killExecutors: KillExecutors — kill the listed executors of an app.
  ARGV[4] appId ARGV[5] JSON array of executor ids (integers; the handler drops others)
  ARGV[6] message ('' = none): set by the app's heartbeat receiver ("Executor heartbeat timed
          out after N ms"); each killed executor then carries it and is reported to the app
          as ExecutorLost (Spark's killAndReplaceExecutor: the app's target is not lowered,
          so the next scheduling pass places a replacement).
  Returns 1 for a known active app (unknown executor ids are ignored), 0 otherwise.
  Events: ExecutorStateChanged (cluster) per kill; ExecutorLost (app) per kill with a message.
]]
local appId = ARGV[4]
local message = ARGV[6] ~= '' and ARGV[6] or nil
local state = redis.call('HGET', K.app(appId), 'state')
if not state or not isAppActive(state) then return 0 end
for _, execId in ipairs(cjson.decode(ARGV[5])) do
  local exec = readExecutor(appId, execId)
  -- a DECOMMISSIONED executor is no longer the app's (Spark's app.executors): not the app's to kill
  if exec and not isExecutorFinished(exec.state) and exec.state ~= 'DECOMMISSIONED' then
    killExecutor(appId, exec, message)
    if message then
      emitApp(appId, 'ExecutorLost', J({{'id', js(exec.id)}, {'message', js(message)}, {'workerHost', js(exec.host or '')}}))
    end
  end
end
markDirty()
return 1
