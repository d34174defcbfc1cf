--[[
  executorStateChanged: ExecutorStateChanged from a worker → ExecutorUpdated to the app.
  ARGV[4] appId ARGV[5] execId ARGV[6] state ARGV[7] message ('' = none)
  ARGV[8] exitStatus ('' = none) ARGV[9] workerId ARGV[10] epoch ARGV[11] oomKilled ('1'/'0')
  Returns one of: 'applied', 'app-failed' (applied, and the app was removed as FAILED after
  spark.deploy.maxExecutorRetries), 'unknown' (no such app/executor: Spark warns and
  replies true), 'stale' (report from another worker or an older registration),
  'duplicate' (already in that state, or already finished: at-least-once delivery),
  'invalid-transition' (e.g. RUNNING → LAUNCHING).
  An executor of an app with heartbeats on is registered with the app's receiver
  (app:<id>:executor-beats) when it becomes RUNNING, and forgotten when it finishes.
]]
local appId, execId, state = ARGV[4], ARGV[5], ARGV[6]
local message = ARGV[7] ~= '' and ARGV[7] or nil
local exitStatus = ARGV[8] ~= '' and tonumber(ARGV[8]) or nil
local workerId, epoch = ARGV[9], tonumber(ARGV[10])
local oomKilled = ARGV[11] == '1'
local exec = readExecutor(appId, execId)
if not exec then return 'unknown' end
if exec.workerId ~= workerId or tonumber(exec.epoch) ~= epoch then return 'stale' end
local old = exec.state
if old == state or isExecutorFinished(old) then return 'duplicate' end
local allowed = TRANSITIONS.executor[old]
if not allowed or not allowed[state] then return 'invalid-transition' end

if not isExecutorFinished(state) then
  -- (a DECOMMISSIONED executor can only end, so it never reaches this branch)
  local updated = {{'id', js(exec.id)}, {'state', js(state)}}
  if message then updated[#updated + 1] = {'message', js(message)} end
  if exitStatus then updated[#updated + 1] = {'exitStatus', js(exitStatus)} end
  emitApp(appId, 'ExecutorUpdated', J(updated))
  exec.state = state
  if state == 'RUNNING' then
    exec.runningSince = NOW
    redis.call('HSET', K.app(appId), 'retryCount', 0)
    -- the app's heartbeat receiver registers it (Spark's HeartbeatReceiver.addExecutor): silent from now on, it expires
    if redis.call('HEXISTS', K.app(appId), 'hbTimeoutMs') == 1 then
      redis.call('ZADD', K.appExecutorBeats(appId), 'NX', redisNowMs(), tostring(exec.id))
    end
  elseif state == 'DECOMMISSIONED' then
    -- reported by the worker itself: it leaves its app's grant, as in decommission-worker
    redis.call('HINCRBY', K.app(appId), 'coresGranted', -exec.cores)
    redis.call('HINCRBY', K.app(appId), 'liveExecutors', -1)
  end
  writeExecutor(appId, exec)
  emitCluster('ExecutorStateChanged', J({{'appId', js(appId)}, {'execId', js(exec.id)}, {'state', js(state)}, {'workerId', js(workerId)}}))
  return 'applied'
end

return endReportedExecutor(appId, exec, state, message, exitStatus, oomKilled or nil)
