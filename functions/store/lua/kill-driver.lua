--[[
  killDriver: RequestKillDriver (and, per driver, RequestKillAllDrivers).
  ARGV[4] driverId
  Returns 'killed-waiting' (it was waiting: KILLED without a worker, as Spark sends
  itself DriverStateChanged(KILLED)), 'kill-sent' (KillDriver written to its worker's
  inbox; the worker reports the final state), or 'not-found' (finished or unknown).
]]
local driverId = ARGV[4]
if redis.call('SISMEMBER', K.driversActive, driverId) == 0 then return 'not-found' end
if redis.call('ZSCORE', K.driversWaiting, driverId) then
  removeDriver(driverId, 'KILLED', nil)
  return 'killed-waiting'
end
local d = redis.call('HMGET', K.driver(driverId), 'workerId')
local w = redis.call('HMGET', K.worker(d[1]), 'state', 'epoch')
if w[1] and w[1] ~= 'DEAD' then
  sendWorker(d[1], 'KillDriver', J({{'driverId', js(driverId)}, {'epoch', js(tonumber(w[2]))}}))
end
redis.call('HSET', K.driver(driverId), 'killRequested', NOW)
return 'kill-sent'
