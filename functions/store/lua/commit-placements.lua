--[[
  commitPlacements: the plan applier. A scheduling pass decided placements on a
  snapshot; this script re-checks each one against the current state and commits
  the ones that still hold, partly if need be (Nomad's plan_apply, inside Redis).
  ARGV[4] JSON array of driver placements  [{driverId, workerId, epoch, cores, memoryMB, resources:{name:n}}]
  ARGV[5] JSON array of executor placements [{appId, workerId, epoch, cores, memoryMB, resources:{name:n}}]
  Checks per placement: worker ALIVE with the same epoch and enough free cores, memory
  and resources; driver still waiting and under spark.deploy.maxDrivers; app still
  active, under its requested cores and its executor limit.
  Effects per accepted placement: capacity deducted, executor/driver recorded
  (LAUNCHING / RUNNING), LaunchExecutor / LaunchDriver written to the worker's inbox,
  ExecutorAdded written to the app's stream. Executor ids come from the app's counter.
  Returns JSON {"drivers":[accepted, rejected], "executors":[accepted, rejected]}.
]]
local function workerFits(p)
  local w = redis.call('HMGET', K.worker(p.workerId), 'state', 'epoch', 'cores', 'coresUsed', 'memoryMB', 'memoryUsed', 'host', 'port')
  if w[1] ~= 'ALIVE' or tonumber(w[2]) ~= tonumber(p.epoch) then return nil end
  if tonumber(w[3]) - tonumber(w[4]) < p.cores then return nil end
  if tonumber(w[5]) - tonumber(w[6]) < p.memoryMB then return nil end
  return w
end

local function deduct(p, member, set)
  redis.call('HINCRBY', K.worker(p.workerId), 'coresUsed', p.cores)
  redis.call('HINCRBY', K.worker(p.workerId), 'memoryUsed', p.memoryMB)
  redis.call('SADD', set, member)
  refreshSchedulable(p.workerId)
end

local function encodeTaken(taken)
  if next(taken) == nil then return '{}' end
  return cjson.encode(taken)
end

local dAccepted, dRejected = 0, 0
for _, p in ipairs(cjson.decode(ARGV[4])) do
  local ok = false
  local d = redis.call('HMGET', K.driver(p.driverId), 'state', 'desc')
  local running = redis.call('SCARD', K.driversActive) - redis.call('ZCARD', K.driversWaiting)
  if d[1] == 'SUBMITTED' and redis.call('ZSCORE', K.driversWaiting, p.driverId) and running < CONF.maxDrivers then
    local w = workerFits(p)
    if w then
      local taken = acquireResources(p.workerId, p.resources or {})
      if taken then
        deduct(p, p.driverId, K.workerDrivers(p.workerId))
        local resources = encodeTaken(taken)
        redis.call('ZREM', K.driversWaiting, p.driverId)
        redis.call('HSET', K.driver(p.driverId), 'state', 'RUNNING', 'workerId', p.workerId, 'workerHostPort', w[7] .. ':' .. w[8], 'resources', resources, 'launchedAt', NOW)
        sendWorker(p.workerId, 'LaunchDriver', J({
          {'driverId', js(p.driverId)}, {'driverDesc', d[2]}, {'resources', resources}, {'epoch', js(tonumber(p.epoch))},
        }))
        emitCluster('DriverStateChanged', J({{'driverId', js(p.driverId)}, {'state', js('RUNNING')}, {'workerId', js(p.workerId)}}))
        ok = true
      end
    end
  end
  if ok then dAccepted = dAccepted + 1 else dRejected = dRejected + 1 end
end

local eAccepted, eRejected = 0, 0
for _, p in ipairs(cjson.decode(ARGV[5])) do
  local ok = false
  local a = redis.call('HMGET', K.app(p.appId), 'state', 'coresGranted', 'requestedCores', 'executorLimit', 'liveExecutors', 'desc')
  if a[1] and isAppActive(a[1]) and tonumber(a[2]) + p.cores <= tonumber(a[3])
      and (tonumber(a[4]) < 0 or tonumber(a[5]) < tonumber(a[4])) then
    local w = workerFits(p)
    if w then
      local taken = acquireResources(p.workerId, p.resources or {})
      if taken then
        local execId = redis.call('HINCRBY', K.app(p.appId), 'nextExecutorId', 1) - 1
        deduct(p, p.appId .. '/' .. execId, K.workerExecutors(p.workerId))
        local hostPort = w[7] .. ':' .. w[8]
        local exec = {
          id = execId, workerId = p.workerId, epoch = tonumber(p.epoch), cores = p.cores, memoryMB = p.memoryMB,
          resources = taken, state = 'LAUNCHING', host = w[7], hostPort = hostPort, startTime = NOW,
        }
        writeExecutor(p.appId, exec)
        redis.call('HINCRBY', K.app(p.appId), 'coresGranted', p.cores)
        redis.call('HINCRBY', K.app(p.appId), 'liveExecutors', 1)
        redis.call('HSET', K.app(p.appId), 'state', 'RUNNING')
        local resources = encodeTaken(taken)
        sendWorker(p.workerId, 'LaunchExecutor', J({
          {'masterUrl', js(CONF.masterUrl)}, {'appId', js(p.appId)}, {'execId', js(execId)}, {'rpId', '0'},
          {'appDesc', a[6]}, {'cores', js(p.cores)}, {'memoryMB', js(p.memoryMB)}, {'resources', resources},
          {'epoch', js(tonumber(p.epoch))},
        }))
        emitApp(p.appId, 'ExecutorAdded', J({
          {'id', js(execId)}, {'workerId', js(p.workerId)}, {'hostPort', js(hostPort)}, {'cores', js(p.cores)}, {'memoryMB', js(p.memoryMB)},
        }))
        emitCluster('ExecutorAdded', J({{'appId', js(p.appId)}, {'execId', js(execId)}, {'workerId', js(p.workerId)}}))
        ok = true
      end
    end
  end
  if ok then eAccepted = eAccepted + 1 else eRejected = eRejected + 1 end
end
if dAccepted + eAccepted > 0 then
  redis.call('HINCRBY', K.stats, 'placements', eAccepted)
  redis.call('HINCRBY', K.stats, 'driverPlacements', dAccepted)
end
return J({{'drivers', cjson.encode({dAccepted, dRejected})}, {'executors', cjson.encode({eAccepted, eRejected})}})
