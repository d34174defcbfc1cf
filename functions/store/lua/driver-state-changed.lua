--[[
  driverStateChanged: DriverStateChanged from a worker (final states only; the handler
  rejects others as Spark does). ARGV[4] driverId ARGV[5] state ARGV[6] exception ('' = none)
  ARGV[7] workerId ARGV[8] epoch
  Returns 'applied', 'unknown' (not active: already finished, or relaunched elsewhere),
  or 'stale' (report from a worker that does not hold the driver now).
]]
local driverId, state = ARGV[4], ARGV[5]
if redis.call('SISMEMBER', K.driversActive, driverId) == 0 then return 'unknown' end
local d = redis.call('HMGET', K.driver(driverId), 'workerId')
if d[1] ~= ARGV[7] then return 'stale' end
local epoch = redis.call('HGET', K.worker(ARGV[7]), 'epoch')
if epoch ~= ARGV[8] then return 'stale' end
local exception = ARGV[6] ~= '' and ARGV[6] or nil
removeDriver(driverId, state, exception)
return 'applied'
