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
  (LAUNCHING / RUNNING) with the id of its launch entry (`launchEntry`, which
  worker-latest-state compares with what the agent has taken in), LaunchExecutor /
  LaunchDriver written to the worker's inbox, ExecutorAdded written to the app's stream.
  Executor ids come from the app's counter.
  An app with executor heartbeats on gets, in each LaunchExecutor, where to send them and
  a token for that executor only (HMAC-SHA1 of `executor\n<appId>/<execId>` under the
  app's key from secret:app:<id>): the agent never sees the key.
  Cost: each worker and app touched is read once and written once per call (their
  running totals live in Lua tables meanwhile); per placement only the two stream
  entries are written. One cluster event summarises the batch.
  Returns JSON {"drivers":[accepted, rejected], "executors":[accepted, rejected]}.
]]
local MASTER_URL_JSON = cjson.encode(CONF.masterUrl)
local workers, workerOrder = {}, {}
local function loadWorker(id)
  local w = workers[id]
  if w then return w end
  local r = redis.call('HMGET', K.worker(id), 'state', 'epoch', 'cores', 'coresUsed', 'memoryMB', 'memoryUsed', 'host', 'port', 'resourcesFree')
  w = { state = r[1], addedCores = 0, addedMemory = 0, executors = {}, drivers = {}, plainResources = (r[9] == nil or r[9] == '{}') }
  if r[1] then
    w.epoch, w.cores, w.coresUsed = tonumber(r[2]), tonumber(r[3]), tonumber(r[4])
    w.memory, w.memoryUsed, w.host, w.port = tonumber(r[5]), tonumber(r[6]), r[7], r[8]
    w.hostJson, w.hostPortJson = cjson.encode(r[7]), cjson.encode(r[7] .. ':' .. r[8])
  end
  workers[id] = w
  workerOrder[#workerOrder + 1] = id
  return w
end

local function workerFits(w, p)
  return w.state == 'ALIVE' and w.epoch == tonumber(p.epoch)
    and w.cores - w.coresUsed >= p.cores and w.memory - w.memoryUsed >= p.memoryMB
end

local function deduct(w, p)
  w.coresUsed = w.coresUsed + p.cores
  w.memoryUsed = w.memoryUsed + p.memoryMB
  w.addedCores = w.addedCores + p.cores
  w.addedMemory = w.addedMemory + p.memoryMB
end

-- claimOnWorker: the worker-side re-check and deduction every placement needs, drivers and
-- executors alike. Returns the worker and the resource addresses taken, or nil.
local function claimOnWorker(p)
  local w = loadWorker(p.workerId)
  if not workerFits(w, p) then return nil end
  local taken = acquireResources(p.workerId, p.resources or {})
  if not taken then return nil end
  if next(taken) ~= nil then w.plainResources = false end
  deduct(w, p)
  return w, taken
end

local function encodeTaken(taken)
  if next(taken) == nil then return '{}' end
  return cjson.encode(taken)
end

-- hmacSha1Hex: HMAC-SHA1 (RFC 2104) over Redis's sha1hex, for executors' heartbeat tokens
-- (lib/http/app-tokens.ts computes and checks the same text with node:crypto).
local function hexToBytes(hex)
  return (string.gsub(hex, '..', function(pair) return string.char(tonumber(pair, 16)) end))
end
local function hmacSha1Hex(key, message)
  if #key > 64 then key = hexToBytes(redis.sha1hex(key)) end
  key = key .. string.rep('\0', 64 - #key)
  local inner, outer = {}, {}
  for i = 1, 64 do
    local b = string.byte(key, i)
    inner[i] = string.char(bit.bxor(b, 0x36))
    outer[i] = string.char(bit.bxor(b, 0x5c))
  end
  return redis.sha1hex(table.concat(outer) .. hexToBytes(redis.sha1hex(table.concat(inner) .. message)))
end

local apps, appOrder = {}, {}
local function loadApp(id)
  local a = apps[id]
  if a then return a end
  local r = redis.call('HMGET', K.app(id), 'state', 'coresGranted', 'requestedCores', 'executorLimit', 'liveExecutors', 'desc', 'nextExecutorId', 'heartbeat')
  a = { state = r[1], executorFields = {} }
  if r[1] then
    a.granted, a.requested, a.limit = tonumber(r[2]), tonumber(r[3]), tonumber(r[4])
    a.live, a.desc, a.nextId = tonumber(r[5]), r[6], tonumber(r[7])
    if r[8] then
      -- heartbeats on: each LaunchExecutor carries {url, intervalMs, maxFailures} and its executor's token
      a.heartbeatOpen = string.sub(r[8], 1, -2)
      a.key = redis.call('HGET', K.appSecret(id), 'key') or ''
    end
  end
  apps[id] = a
  appOrder[#appOrder + 1] = id
  return a
end

local dAccepted, dRejected = 0, 0
local running = redis.call('SCARD', K.driversActive) - redis.call('ZCARD', K.driversWaiting)
for _, p in ipairs(cjson.decode(ARGV[4])) do
  local ok = false
  local d = redis.call('HMGET', K.driver(p.driverId), 'state', 'desc')
  if d[1] == 'SUBMITTED' and redis.call('ZSCORE', K.driversWaiting, p.driverId) and running < CONF.maxDrivers then
    local w, taken = claimOnWorker(p)
    if w then
      w.drivers[#w.drivers + 1] = p.driverId
      running = running + 1
      local resources = encodeTaken(taken)
      redis.call('ZREM', K.driversWaiting, p.driverId)
      local launchEntry = sendWorker(p.workerId, 'LaunchDriver', J({
        {'driverId', js(p.driverId)}, {'driverDesc', d[2]}, {'resources', resources}, {'epoch', js(w.epoch)},
      }))
      redis.call('HSET', K.driver(p.driverId), 'state', 'RUNNING', 'workerId', p.workerId, 'workerHostPort', w.host .. ':' .. w.port,
        'resources', resources, 'launchedAt', NOW, 'launchEntry', launchEntry)
      emitCluster('DriverStateChanged', J({{'driverId', js(p.driverId)}, {'state', js('RUNNING')}, {'workerId', js(p.workerId)}}))
      ok = true
    end
  end
  if ok then dAccepted = dAccepted + 1 else dRejected = dRejected + 1 end
end

local eAccepted, eRejected = 0, 0
for _, p in ipairs(cjson.decode(ARGV[5])) do
  local ok = false
  local a = loadApp(p.appId)
  if a.state and isAppActive(a.state) and a.granted + p.cores <= a.requested and (a.limit < 0 or a.live < a.limit) then
    local w, taken = claimOnWorker(p)
    if w then
      local execId = a.nextId
      a.nextId = execId + 1
      a.granted = a.granted + p.cores
      a.live = a.live + 1
      w.executors[#w.executors + 1] = p.appId .. '/' .. execId
      local resources = encodeTaken(taken)
      local fields = a.executorFields
      fields[#fields + 1] = tostring(execId)
      -- ids, hosts and numbers were validated on the way in (no characters JSON must escape),
      -- so the hot path formats its JSON directly instead of encoding field by field
      local heartbeat = ''
      if a.heartbeatOpen then
        heartbeat = ',"heartbeat":' .. a.heartbeatOpen .. ',"token":"fe1.' .. hmacSha1Hex(a.key, 'executor\n' .. p.appId .. '/' .. execId) .. '"}'
      end
      local launchEntry = sendWorker(p.workerId, 'LaunchExecutor', string.format(
        '{"masterUrl":%s,"appId":"%s","execId":%d,"rpId":0,"appDesc":%s,"cores":%d,"memoryMB":%d,"resources":%s,"epoch":%d%s}',
        MASTER_URL_JSON, p.appId, execId, a.desc, p.cores, p.memoryMB, resources, w.epoch, heartbeat))
      fields[#fields + 1] = string.format(
        '{"id":%d,"workerId":"%s","epoch":%d,"cores":%d,"memoryMB":%d,"resources":%s,"state":"LAUNCHING","host":%s,"hostPort":%s,"startTime":%d,"launchEntry":"%s"}',
        execId, p.workerId, w.epoch, p.cores, p.memoryMB, resources, w.hostJson, w.hostPortJson, NOW, launchEntry)
      emitApp(p.appId, 'ExecutorAdded', string.format(
        '{"id":%d,"workerId":"%s","hostPort":%s,"cores":%d,"memoryMB":%d}',
        execId, p.workerId, w.hostPortJson, p.cores, p.memoryMB))
      ok = true
    end
  end
  if ok then eAccepted = eAccepted + 1 else eRejected = eRejected + 1 end
end

-- write back each touched worker and app once
local placedWorkers = {}
for _, id in ipairs(workerOrder) do
  local w = workers[id]
  if #w.executors > 0 then placedWorkers[#placedWorkers + 1] = id end
  if w.addedCores > 0 or w.addedMemory > 0 or #w.drivers > 0 or #w.executors > 0 then
    redis.call('HINCRBY', K.worker(id), 'coresUsed', w.addedCores)
    redis.call('HINCRBY', K.worker(id), 'memoryUsed', w.addedMemory)
    if #w.executors > 0 then redis.call('SADD', K.workerExecutors(id), unpack(w.executors)) end
    if #w.drivers > 0 then redis.call('SADD', K.workerDrivers(id), unpack(w.drivers)) end
    if w.plainResources then
      -- no custom resources: the compact entry follows from the values already in hand
      redis.call('HSET', K.schedulable, id, string.format('{"c":%d,"t":%d,"m":%d,"e":%d,"r":{},"h":%s,"p":%d}',
        w.cores - w.coresUsed, w.cores, w.memory - w.memoryUsed, w.epoch, w.hostJson, tonumber(w.port)))
    else
      refreshSchedulable(id)
    end
  end
end
local placedApps = {}
for _, id in ipairs(appOrder) do
  local a = apps[id]
  if #a.executorFields > 0 then
    redis.call('HSET', K.appExecutors(id), unpack(a.executorFields))
    redis.call('HSET', K.app(id), 'coresGranted', a.granted, 'liveExecutors', a.live, 'nextExecutorId', a.nextId, 'state', 'RUNNING')
    placedApps[#placedApps + 1] = id
  end
end
if eAccepted > 0 then
  emitCluster('ExecutorsAdded', J({{'executors', js(eAccepted)}, {'appIds', cjson.encode(placedApps)}, {'workerIds', cjson.encode(placedWorkers)}}))
end
if dAccepted + eAccepted > 0 then
  redis.call('HINCRBY', K.stats, 'placements', eAccepted)
  redis.call('HINCRBY', K.stats, 'driverPlacements', dAccepted)
end
if dRejected + eRejected > 0 then
  redis.call('HINCRBY', K.stats, 'placementsRejected', dRejected + eRejected)
end
return J({{'drivers', cjson.encode({dAccepted, dRejected})}, {'executors', cjson.encode({eAccepted, eRejected})}})
