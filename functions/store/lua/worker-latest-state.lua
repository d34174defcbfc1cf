--[[
  workerLatestState: WorkerLatestState (and WorkerSchedulerStateResponse) — reconcile
  what a worker runs with what the master placed there: every reported executor or
  driver the master does not hold on that worker is killed (SPARK-13604, SPARK-19900).
  ARGV[4] workerId ARGV[5] epoch ARGV[6] JSON array of "appId/execId" ARGV[7] JSON array of driver ids
  Returns JSON {"killedExecutors":n,"killedDrivers":n} or {"error":"unknown-worker"|"stale"}.
]]
local workerId, epoch = ARGV[4], ARGV[5]
local w = redis.call('HMGET', K.worker(workerId), 'state', 'epoch')
if not w[1] or w[1] == 'DEAD' then return J({{'error', js('unknown-worker')}}) end
if w[2] ~= epoch then return J({{'error', js('stale')}}) end
local killedExecutors, killedDrivers = 0, 0
for _, fullId in ipairs(cjson.decode(ARGV[6])) do
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
  if redis.call('SISMEMBER', K.workerDrivers(workerId), driverId) == 0 then
    sendWorker(workerId, 'KillDriver', J({{'driverId', js(driverId)}, {'epoch', js(tonumber(epoch))}}))
    killedDrivers = killedDrivers + 1
  end
end
return J({{'killedExecutors', js(killedExecutors)}, {'killedDrivers', js(killedDrivers)}})
