--[[
  workerLatestState: WorkerLatestState (and WorkerSchedulerStateResponse): reconcile what a
  worker runs with what the master placed there, in both directions.
  ARGV[4] workerId  ARGV[5] epoch  ARGV[6] JSON array of "appId/execId" the agent holds
  ARGV[7] JSON array of driver ids the agent holds
  ARGV[8] the last inbox entry id the agent had taken in when it built the report ('' = none)
  1. Worker → master (Spark's SPARK-13604, SPARK-19900): every executor or driver the agent
     holds that the master does not hold on that worker is killed (KillExecutor / KillDriver
     to its inbox).
  2. Master → worker (Flint): every executor or driver the master holds on that worker, that
     the agent does not hold, and whose launch can no longer reach the agent, is a phantom: an
     executor ends LOST (ExecutorUpdated to its app, capacity freed, counted as an abnormal end
     as Spark counts a lost executor); a driver is relaunched if supervised, else ends ERROR, as
     when its worker is lost. A launch can no longer reach the agent when its entry is at or
     before ARGV[8] (the agent took it in, so it would hold it), or when its entry is gone from
     the inbox (trimmed) without ever having been delivered to the agent's consumer group.
     Tasks without a recorded launch entry, or whose launch is still on its way, are left alone.
  Returns JSON {"killedExecutors":n,"killedDrivers":n,"lostExecutors":n,"lostDrivers":n}
  or {"error":"unknown-worker"|"stale"}.
  Events: KillExecutor/KillDriver to the worker's inbox; ExecutorUpdated(LOST) to apps;
  ExecutorStateChanged / DriverStateChanged / ApplicationRemoved to the cluster stream.
]]
local workerId, epoch = ARGV[4], ARGV[5]
local seenThrough = ARGV[8] or ''
local w = redis.call('HMGET', K.worker(workerId), 'state', 'epoch')
if not w[1] or w[1] == 'DEAD' then return J({{'error', js('unknown-worker')}}) end
if w[2] ~= epoch then return J({{'error', js('stale')}}) end

local heldExecutors, heldDrivers = {}, {}
local killedExecutors, killedDrivers = 0, 0
for _, fullId in ipairs(cjson.decode(ARGV[6])) do
  heldExecutors[fullId] = true
  if redis.call('SISMEMBER', K.workerExecutors(workerId), fullId) == 0 then
    local slash = string.find(fullId, '/[^/]*$')
    sendWorker(workerId, 'KillExecutor', J({
      {'masterUrl', js(CONF.masterUrl)}, {'appId', js(string.sub(fullId, 1, slash - 1))},
      {'execId', js(tonumber(string.sub(fullId, slash + 1)))}, {'epoch', js(tonumber(epoch))},
    }))
    killedExecutors = killedExecutors + 1
  end
end
for _, driverId in ipairs(cjson.decode(ARGV[7])) do
  heldDrivers[driverId] = true
  if redis.call('SISMEMBER', K.workerDrivers(workerId), driverId) == 0 then
    sendWorker(workerId, 'KillDriver', J({{'driverId', js(driverId)}, {'epoch', js(tonumber(epoch))}}))
    killedDrivers = killedDrivers + 1
  end
end

-- the inbox group's last-delivered-id: an entry after it was never handed to the agent
local lastDelivered = '0-0'
if redis.call('EXISTS', K.workerInbox(workerId)) == 1 then
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', K.workerInbox(workerId))) do
    local info = {}
    for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
    if info['name'] == 'agent' then lastDelivered = info['last-delivered-id'] end -- INBOX_GROUP of protocol/streams.ts
  end
end

-- cannotReach: the launch entry `entry` will never reach the agent as something it does not hold
local function cannotReach(entry)
  if seenThrough ~= '' and streamIdAtOrBefore(entry, seenThrough) then return true end
  if streamIdAtOrBefore(entry, lastDelivered) then return false end
  return #redis.call('XRANGE', K.workerInbox(workerId), entry, entry) == 0
end

local lostExecutors, lostDrivers = 0, 0
do
  local reason = 'not running on worker ' .. workerId .. ' (the worker does not know it)'
  for _, fullId in ipairs(redis.call('SMEMBERS', K.workerExecutors(workerId))) do
    if not heldExecutors[fullId] then
      local slash = string.find(fullId, '/[^/]*$')
      local appId = string.sub(fullId, 1, slash - 1)
      local exec = readExecutor(appId, string.sub(fullId, slash + 1))
      if exec and not isExecutorFinished(exec.state) and exec.launchEntry
        and tonumber(exec.epoch) == tonumber(epoch) and cannotReach(exec.launchEntry) then
        endReportedExecutor(appId, exec, 'LOST', reason, nil, nil)
        lostExecutors = lostExecutors + 1
      end
    end
  end
  for _, driverId in ipairs(redis.call('SMEMBERS', K.workerDrivers(workerId))) do
    if not heldDrivers[driverId] then
      local d = redis.call('HMGET', K.driver(driverId), 'launchEntry', 'supervise')
      if d[1] and cannotReach(d[1]) then
        if d[2] == 'true' then
          relaunchDriver(driverId)
        else
          removeDriver(driverId, 'ERROR', 'Driver ' .. reason)
        end
        lostDrivers = lostDrivers + 1
      end
    end
  end
end
return J({
  {'killedExecutors', js(killedExecutors)}, {'killedDrivers', js(killedDrivers)},
  {'lostExecutors', js(lostExecutors)}, {'lostDrivers', js(lostDrivers)},
})
