--[[
  clearCompleted: RequestClearCompletedDriversAndApps — forget every completed
  application and driver (no state check, as Spark). Returns the number forgotten.
]]
local n = 0
for _, appId in ipairs(redis.call('LRANGE', K.appsCompleted, 0, -1)) do
  deleteAppKeys(appId)
  n = n + 1
end
for _, driverId in ipairs(redis.call('LRANGE', K.driversCompleted, 0, -1)) do
  deleteDriverKeys(driverId)
  n = n + 1
end
redis.call('DEL', K.appsCompleted, K.driversCompleted)
emitCluster('CompletedCleared', J({{'count', js(n)}}))
return n
