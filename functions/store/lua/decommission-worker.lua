--[[
  decommissionWorker: WorkerDecommissioning / DecommissionWorkers (Spark's decommissionWorker).
  ARGV[4] workerId ARGV[5] '1' to also tell the worker (DecommissionWorker to its inbox)
  Executors become DECOMMISSIONED (they keep running, get no new work) and leave their
  apps' grants; the worker stops being schedulable. Returns 1 if changed, 0 otherwise.
]]
local workerId = ARGV[4]
local w = redis.call('HMGET', K.worker(workerId), 'state', 'host', 'epoch')
if w[1] ~= 'ALIVE' then return 0 end
redis.call('HSET', K.worker(workerId), 'state', 'DECOMMISSIONED')
refreshSchedulable(workerId)
for _, fullId in ipairs(redis.call('SMEMBERS', K.workerExecutors(workerId))) do
  local slash = string.find(fullId, '/[^/]*$')
  local appId = string.sub(fullId, 1, slash - 1)
  local exec = readExecutor(appId, string.sub(fullId, slash + 1))
  if exec and not isExecutorFinished(exec.state) and exec.state ~= 'DECOMMISSIONED' then
    exec.state = 'DECOMMISSIONED'
    writeExecutor(appId, exec)
    -- it leaves its app (Spark: app.removeExecutor) exactly once: finishExecutor skips DECOMMISSIONED ones
    redis.call('HINCRBY', K.app(appId), 'coresGranted', -exec.cores)
    redis.call('HINCRBY', K.app(appId), 'liveExecutors', -1)
    emitApp(appId, 'ExecutorUpdated', J({
      {'id', js(exec.id)}, {'state', js('DECOMMISSIONED')}, {'message', js('worker decommissioned')}, {'workerHost', js(w[2])},
    }))
  end
end
if ARGV[5] == '1' then sendWorker(workerId, 'DecommissionWorker', J({{'epoch', js(tonumber(w[3]))}})) end
emitCluster('WorkerDecommissioned', J({{'id', js(workerId)}}))
markDirty()
return 1
