--[[
  prelude: shared by every Flint commit script (prepended at load time).

  Calling convention of every script:
    KEYS[1]  the cluster's stats key (routes the call to the cluster's hash slot)
    ARGV[1]  the cluster namespace, e.g. "flint{default}"
    ARGV[2]  now, in ms (the caller passes the clock; scripts never read it)
    ARGV[3]  JSON of the master configuration the script needs:
             {masterUrl, retainedApps, retainedDrivers, retainedExecutors, maxRetries, maxDrivers,
              appIdPattern, driverIdPattern, appNumberModulo, ts (yyyyMMddHHmmss of now)}
    ARGV[4..] script-specific

  Every key is built by K (generated from protocol/keys.ts, so both sides spell
  keys the same way) and shares the cluster's hash tag.

  JSON rule: cjson encodes an empty Lua table as {}; bodies that contain arrays
  that may be empty are spliced from JSON strings the caller produced, never
  re-encoded here.
]]
local NS = ARGV[1]
local NOW = tonumber(ARGV[2])
local CONF = cjson.decode(ARGV[3])

--@KEYS@--

local STREAM_MAXLEN = 10000
-- an application's event stream: enough for a client that reconnects to catch up (3 entries
-- per executor launch), and a bounded share of Redis per application; trimmed to
-- FINISHED_APP_EVENTS once the application ends (what a late reader still needs: its end)
local APP_EVENTS_MAXLEN = 1000
local FINISHED_APP_EVENTS = 100

-- redisNowMs: Redis's own clock. Everything written into or compared with the heartbeats
-- zset uses it, so a worker or master host whose clock drifts cannot look stale or fresh.
local function redisNowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function js(value)
  return cjson.encode(value)
end

-- J builds a JSON object from {name, jsonText} pairs (values already encoded).
local function J(fields)
  local parts = {}
  for i, f in ipairs(fields) do
    parts[i] = cjson.encode(f[1]) .. ':' .. f[2]
  end
  return '{' .. table.concat(parts, ',') .. '}'
end

local function isExecutorFinished(state)
  return state == 'KILLED' or state == 'FAILED' or state == 'LOST' or state == 'EXITED'
end

local function isAppActive(state)
  return state == 'WAITING' or state == 'RUNNING'
end

local function markDirty()
  redis.call('INCR', K.scheduleDirty)
end

local function emitCluster(kind, bodyJson)
  redis.call('XADD', K.clusterEvents, 'MAXLEN', '~', STREAM_MAXLEN, '*', 'type', kind, 'body', bodyJson, 'at', tostring(NOW))
end

local function emitApp(appId, kind, bodyJson)
  redis.call('XADD', K.appEvents(appId), 'MAXLEN', '~', APP_EVENTS_MAXLEN, '*', 'type', kind, 'body', bodyJson)
end

-- sendWorker appends a command to a worker's inbox; returns the entry id (launches record it,
-- so the master can tell a launch still on its way from one the agent has taken in).
local function sendWorker(workerId, kind, bodyJson)
  return redis.call('XADD', K.workerInbox(workerId), 'MAXLEN', '~', STREAM_MAXLEN, '*', 'type', kind, 'body', bodyJson)
end

-- streamIdAtOrBefore: stream id a <= b ('<ms>-<seq>', compared as numbers).
local function streamIdAtOrBefore(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if not am or not bm then return false end
  am, bm = tonumber(am), tonumber(bm)
  if am ~= bm then return am < bm end
  return tonumber(as) <= tonumber(bs)
end

local function count(tbl)
  local n = 0
  for _ in pairs(tbl) do n = n + 1 end
  return n
end

-- refreshSchedulable keeps the compact snapshot of an ALIVE worker in step with its hash.
local function refreshSchedulable(workerId)
  local w = redis.call('HMGET', K.worker(workerId), 'state', 'cores', 'coresUsed', 'memoryMB', 'memoryUsed', 'epoch', 'host', 'port', 'resourcesFree')
  if w[1] ~= 'ALIVE' then
    redis.call('HDEL', K.schedulable, workerId)
    return
  end
  local free = cjson.decode(w[9] or '{}')
  local counts = {}
  for name, addresses in pairs(free) do counts[name] = #addresses end
  local r = '{}'
  if next(counts) ~= nil then r = cjson.encode(counts) end
  redis.call('HSET', K.schedulable, workerId, J({
    {'c', js(tonumber(w[2]) - tonumber(w[3]))},
    {'t', js(tonumber(w[2]))},
    {'m', js(tonumber(w[4]) - tonumber(w[5]))},
    {'e', js(tonumber(w[6]))},
    {'r', r},
    {'h', js(w[7])},
    {'p', js(tonumber(w[8]))},
  }))
end

-- acquireResources takes the first `amount` free addresses of each resource; nil if short.
local function acquireResources(workerId, amounts)
  if next(amounts) == nil then return {} end
  local free = cjson.decode(redis.call('HGET', K.worker(workerId), 'resourcesFree') or '{}')
  local taken = {}
  for name, amount in pairs(amounts) do
    local list = free[name] or {}
    if #list < amount then return nil end
    local got, rest = {}, {}
    for i, address in ipairs(list) do
      if i <= amount then got[#got + 1] = address else rest[#rest + 1] = address end
    end
    taken[name] = got
    free[name] = rest
  end
  for name, list in pairs(free) do
    if #list == 0 then free[name] = nil end
  end
  local encoded = '{}'
  if next(free) ~= nil then encoded = cjson.encode(free) end
  redis.call('HSET', K.worker(workerId), 'resourcesFree', encoded)
  return taken
end

local function releaseResources(workerId, taken)
  if taken == nil or next(taken) == nil then return end
  local free = cjson.decode(redis.call('HGET', K.worker(workerId), 'resourcesFree') or '{}')
  for name, list in pairs(taken) do
    local target = free[name] or {}
    for _, address in ipairs(list) do target[#target + 1] = address end
    table.sort(target)
    free[name] = target
  end
  redis.call('HSET', K.worker(workerId), 'resourcesFree', cjson.encode(free))
end

-- releaseFromWorker returns a task's capacity to its worker, once (the set membership is the guard).
local function releaseFromWorker(workerId, memberSet, member, cores, memoryMB, resources)
  if not workerId or workerId == '' then return false end
  if redis.call('SREM', memberSet, member) == 0 then return false end
  redis.call('HINCRBY', K.worker(workerId), 'coresUsed', -cores)
  redis.call('HINCRBY', K.worker(workerId), 'memoryUsed', -memoryMB)
  releaseResources(workerId, resources)
  refreshSchedulable(workerId)
  return true
end

local function readExecutor(appId, execId)
  local raw = redis.call('HGET', K.appExecutors(appId), tostring(execId))
  if not raw then return nil end
  return cjson.decode(raw)
end

local function writeExecutor(appId, exec)
  redis.call('HSET', K.appExecutors(appId), tostring(exec.id), cjson.encode(exec))
end

-- trimCompleted drops max(retained/10, 1) of the oldest once the list is full, as Spark does.
local function trimCompleted(listKey, retained, deleteKeys)
  if redis.call('LLEN', listKey) >= retained then
    local drop = math.max(math.floor(retained / 10), 1)
    for _ = 1, drop do
      local old = redis.call('LPOP', listKey)
      if old then deleteKeys(old) end
    end
  end
end

-- finishExecutor ends an executor on the master: state, worker capacity, app grant.
local function finishExecutor(appId, exec, state, message, exitStatus, oomKilled)
  local previous = exec.state
  exec.state = state
  exec.message = message
  exec.exitStatus = exitStatus
  exec.oomKilled = oomKilled
  exec.endTime = NOW
  -- the app's heartbeat receiver forgets it (its last beat stays on the record for the UI)
  local execKey = tostring(exec.id)
  local lastBeat = redis.call('ZSCORE', K.appExecutorBeats(appId), execKey)
  if lastBeat then
    exec.lastHeartbeat = tonumber(lastBeat)
    redis.call('ZREM', K.appExecutorBeats(appId), execKey)
    redis.call('HDEL', K.appExecutorExpiries(appId), execKey)
  end
  writeExecutor(appId, exec)
  -- Spark keeps every removed executor of an app; Flint keeps the last spark.ui.retainedDeadExecutors
  trimCompleted(K.appFinishedExecutors(appId), CONF.retainedExecutors or 100, function(old)
    redis.call('HDEL', K.appExecutors(appId), old)
    redis.call('HDEL', K.appExecutorMetrics(appId), old)
  end)
  redis.call('RPUSH', K.appFinishedExecutors(appId), tostring(exec.id))
  releaseFromWorker(exec.workerId, K.workerExecutors(exec.workerId), appId .. '/' .. exec.id, exec.cores, exec.memoryMB, exec.resources)
  -- a DECOMMISSIONED executor already left its app's grant when it was decommissioned
  if previous ~= 'DECOMMISSIONED' then
    redis.call('HINCRBY', K.app(appId), 'coresGranted', -exec.cores)
    redis.call('HINCRBY', K.app(appId), 'liveExecutors', -1)
  end
  emitCluster('ExecutorStateChanged', J({{'appId', js(appId)}, {'execId', js(exec.id)}, {'state', js(state)}, {'workerId', js(exec.workerId)}}))
end

-- killExecutor: Spark's Master.killExecutor — KILLED at once, KillExecutor to the worker.
-- `message` (optional) says why, e.g. the app's heartbeat receiver's "Executor heartbeat timed out after N ms".
local function killExecutor(appId, exec, message)
  local workerState = redis.call('HGET', K.worker(exec.workerId), 'state')
  local held = redis.call('SISMEMBER', K.workerExecutors(exec.workerId), appId .. '/' .. exec.id) == 1
  finishExecutor(appId, exec, 'KILLED', message or 'killed by the master', nil, nil)
  if held and workerState ~= 'DEAD' then
    sendWorker(exec.workerId, 'KillExecutor', J({
      {'masterUrl', js(CONF.masterUrl)}, {'appId', js(appId)}, {'execId', js(exec.id)}, {'epoch', js(exec.epoch)},
    }))
  end
end

local function deleteAppKeys(appId)
  local clientId = redis.call('HGET', K.app(appId), 'clientId')
  if clientId and redis.call('HGET', K.appsByClient, clientId) == appId then
    redis.call('HDEL', K.appsByClient, clientId)
  end
  redis.call('DEL', K.app(appId), K.appExecutors(appId), K.appFinishedExecutors(appId), K.appEvents(appId), K.appSecret(appId),
    K.appExecutorBeats(appId), K.appExecutorExpiries(appId), K.appExecutorMetrics(appId))
end

-- removeApplication: Spark's Master.removeApplication. Returns false if the app is not active.
-- `reason` (optional): why the master ended it (a lapsed client lease, its driver ended); it is
-- kept on the app as endReason and sent in ApplicationRemoved even for FINISHED, because the
-- client did not ask for it.
local function removeApplication(appId, state, reason)
  local a = redis.call('HMGET', K.app(appId), 'state', 'driverId')
  local current = a[1]
  if not current or not isAppActive(current) then return false end
  redis.call('HSET', K.app(appId), 'state', state, 'endTime', NOW)
  if reason then redis.call('HSET', K.app(appId), 'endReason', reason) end
  redis.call('ZREM', K.appsWaiting, appId)
  -- its client lease and its heartbeat receiver end with it
  redis.call('ZREM', K.appLeases, appId)
  redis.call('ZREM', K.executorBeatChecks, appId)
  if a[2] then redis.call('SREM', K.driverApps(a[2]), appId) end
  local workers = {}
  local all = redis.call('HVALS', K.appExecutors(appId))
  for _, raw in ipairs(all) do
    local exec = cjson.decode(raw)
    workers[exec.workerId] = true
    if not isExecutorFinished(exec.state) then killExecutor(appId, exec) end
  end
  for workerId in pairs(workers) do
    if redis.call('HGET', K.worker(workerId), 'state') == 'ALIVE' then
      sendWorker(workerId, 'ApplicationFinished', J({{'id', js(appId)}}))
    end
  end
  if reason then
    emitApp(appId, 'ApplicationRemoved', J({{'message', js(state .. ': ' .. reason)}}))
  elseif state ~= 'FINISHED' then
    emitApp(appId, 'ApplicationRemoved', J({{'message', js(state)}}))
  end
  -- what a reader of an ended application still needs is its end
  redis.call('XTRIM', K.appEvents(appId), 'MAXLEN', '~', FINISHED_APP_EVENTS)
  trimCompleted(K.appsCompleted, CONF.retainedApps, deleteAppKeys)
  redis.call('RPUSH', K.appsCompleted, appId)
  emitCluster('ApplicationRemoved', J({{'appId', js(appId)}, {'state', js(state)}}))
  markDirty()
  return true
end

-- endReportedExecutor: an executor reached a final state on its worker (Spark's
-- ExecutorStateChanged for a finished executor): ExecutorUpdated to the app, capacity
-- freed, and an abnormal end counted against the app, which is removed as FAILED after
-- spark.deploy.maxExecutorRetries back-to-back failures with no RUNNING executor.
-- Returns 'applied' or 'app-failed'.
local function endReportedExecutor(appId, exec, state, message, exitStatus, oomKilled)
  local old = exec.state
  local appState = redis.call('HGET', K.app(appId), 'state')
  if old == 'DECOMMISSIONED' then
    -- it left its app when it was decommissioned (Spark: the app no longer knows it): free the
    -- worker's capacity, but tell the app nothing and count nothing against it
    finishExecutor(appId, exec, state, message, exitStatus, oomKilled)
    return 'applied'
  end
  local updated = {{'id', js(exec.id)}, {'state', js(state)}}
  if message then updated[#updated + 1] = {'message', js(message)} end
  if exitStatus then updated[#updated + 1] = {'exitStatus', js(exitStatus)} end
  if oomKilled then updated[#updated + 1] = {'oomKilled', 'true'} end
  emitApp(appId, 'ExecutorUpdated', J(updated))
  finishExecutor(appId, exec, state, message, exitStatus, oomKilled)
  markDirty()
  local normalExit = exitStatus == 0
  if appState and isAppActive(appState) and not normalExit then
    local retries = redis.call('HINCRBY', K.app(appId), 'retryCount', 1)
    if CONF.maxRetries >= 0 and retries >= CONF.maxRetries then
      local anyRunning = false
      for _, raw in ipairs(redis.call('HVALS', K.appExecutors(appId))) do
        if cjson.decode(raw).state == 'RUNNING' then anyRunning = true break end
      end
      if not anyRunning then
        removeApplication(appId, 'FAILED')
        return 'app-failed'
      end
    end
  end
  return 'applied'
end

local function deleteDriverKeys(driverId)
  redis.call('DEL', K.driver(driverId), K.driverApps(driverId))
end

-- removeDriver: Spark's Master.removeDriver. Returns false if the driver is not active.
local function removeDriver(driverId, state, exception)
  if redis.call('SISMEMBER', K.driversActive, driverId) == 0 then return false end
  local d = redis.call('HMGET', K.driver(driverId), 'workerId', 'cores', 'memoryMB', 'resources')
  redis.call('SREM', K.driversActive, driverId)
  redis.call('ZREM', K.driversWaiting, driverId)
  redis.call('HSET', K.driver(driverId), 'state', state, 'endTime', NOW)
  if exception and exception ~= '' then redis.call('HSET', K.driver(driverId), 'exception', exception) end
  if d[1] and d[1] ~= '' then
    releaseFromWorker(d[1], K.workerDrivers(d[1]), driverId, tonumber(d[2]), tonumber(d[3]), cjson.decode(d[4] or '{}'))
  end
  -- the applications the driver registered end with it (Spark: the driver disconnects, finishApplication)
  local appState = 'FINISHED'
  if state == 'KILLED' then appState = 'KILLED' end
  for _, appId in ipairs(redis.call('SMEMBERS', K.driverApps(driverId))) do
    removeApplication(appId, appState, 'its driver ' .. driverId .. ' ended (' .. state .. ')')
  end
  redis.call('DEL', K.driverApps(driverId))
  trimCompleted(K.driversCompleted, CONF.retainedDrivers, deleteDriverKeys)
  redis.call('RPUSH', K.driversCompleted, driverId)
  emitCluster('DriverStateChanged', J({{'driverId', js(driverId)}, {'state', js(state)}}))
  markDirty()
  return true
end

-- createDriver: a new SUBMITTED driver from a DriverDescription (JSON text); returns its id.
local function createDriver(descJson, relaunchOf)
  local desc = cjson.decode(descJson)
  local n = redis.call('INCR', K.driverSeq) - 1
  local driverId = string.format(CONF.driverIdPattern, CONF.ts, n)
  local fields = {
    'id', driverId, 'desc', descJson, 'state', 'SUBMITTED', 'cores', desc.cores, 'memoryMB', desc.memoryMB,
    'supervise', tostring(desc.supervise == true), 'startTime', NOW, 'seq', n, 'resources', '{}',
  }
  if relaunchOf then
    fields[#fields + 1] = 'relaunchOf'
    fields[#fields + 1] = relaunchOf
  end
  redis.call('HSET', K.driver(driverId), unpack(fields))
  redis.call('ZADD', K.driversWaiting, n, driverId)
  redis.call('SADD', K.driversActive, driverId)
  emitCluster('DriverSubmitted', J({{'driverId', js(driverId)}}))
  markDirty()
  return driverId
end

-- relaunchDriver: SPARK-19900 — retire the id as RELAUNCHING and queue a new driver with a new id.
local function relaunchDriver(driverId)
  local descJson = redis.call('HGET', K.driver(driverId), 'desc')
  if not descJson then return nil end
  if not removeDriver(driverId, 'RELAUNCHING', nil) then return nil end
  local newId = createDriver(descJson, driverId)
  redis.call('HSET', K.driver(driverId), 'relaunchedAs', newId)
  return newId
end

-- removeWorker: Spark's Master.removeWorker — DEAD, executors LOST, drivers relaunched or ERROR,
-- WorkerRemoved to every active app. Returns false if the worker is not live.
local function removeWorker(workerId, message)
  local w = redis.call('HMGET', K.worker(workerId), 'state', 'host', 'port', 'lastHeartbeat')
  if not w[1] or w[1] == 'DEAD' then return false end
  local host = w[2]
  -- a live worker's last beat is in the heartbeats zset; keep it on the hash once it is DEAD
  local lastBeat = redis.call('ZSCORE', K.heartbeats, workerId) or w[4] or NOW
  redis.call('HSET', K.worker(workerId), 'state', 'DEAD', 'deadSince', NOW, 'deathReason', message, 'lastHeartbeat', lastBeat)
  local address = host .. ':' .. w[3]
  if redis.call('HGET', K.workersByAddress, address) == workerId then
    redis.call('HDEL', K.workersByAddress, address)
  end
  redis.call('ZREM', K.heartbeats, workerId)
  redis.call('HDEL', K.schedulable, workerId)
  redis.call('ZADD', K.deadWorkers, tonumber(lastBeat), workerId)

  local executors = redis.call('SMEMBERS', K.workerExecutors(workerId))
  local drivers = redis.call('SMEMBERS', K.workerDrivers(workerId))
  redis.call('DEL', K.workerExecutors(workerId), K.workerDrivers(workerId))
  for _, fullId in ipairs(executors) do
    local slash = string.find(fullId, '/[^/]*$')
    local appId = string.sub(fullId, 1, slash - 1)
    local exec = readExecutor(appId, string.sub(fullId, slash + 1))
    if exec and not isExecutorFinished(exec.state) then
      local lostMessage = 'worker lost: ' .. message
      finishExecutor(appId, exec, 'LOST', lostMessage, nil, nil)
      emitApp(appId, 'ExecutorUpdated', J({
        {'id', js(exec.id)}, {'state', js('LOST')}, {'message', js(lostMessage)}, {'workerHost', js(host)},
      }))
    end
  end
  for _, driverId in ipairs(drivers) do
    local supervise = redis.call('HGET', K.driver(driverId), 'supervise')
    -- the driver keeps its workerId, as Spark keeps driver.worker: the status of the retired
    -- (RELAUNCHING) or ERROR id still names the worker it ran on. No capacity is given back
    -- to the dead worker: its drivers set was deleted above, so removeDriver's release is a no-op.
    if supervise == 'true' then
      relaunchDriver(driverId)
    else
      removeDriver(driverId, 'ERROR', nil)
    end
  end
  local apps = redis.call('ZRANGE', K.appsWaiting, 0, -1)
  local removed = J({{'id', js(workerId)}, {'host', js(host)}, {'message', js(message)}})
  for _, appId in ipairs(apps) do
    emitApp(appId, 'WorkerRemoved', removed)
  end
  emitCluster('WorkerRemoved', removed)
  markDirty()
  return true
end

local function deleteWorkerKeys(workerId)
  redis.call('DEL', K.worker(workerId), K.workerExecutors(workerId), K.workerDrivers(workerId), K.workerInbox(workerId))
  redis.call('SREM', K.workersAll, workerId)
  redis.call('ZREM', K.deadWorkers, workerId)
  redis.call('ZREM', K.heartbeats, workerId)
  redis.call('HDEL', K.schedulable, workerId)
end
