--[[
  submitDriver: RequestSubmitDriver → SubmitDriverResponse.
  ARGV[4] DriverDescription JSON (validated)  ARGV[5] request id ('' = none)
  Returns the driver id. Under at-least-once delivery the same request id always
  yields the same driver: the first result is remembered for a day.
]]
local requestId = ARGV[5]
if requestId ~= '' then
  local previous = redis.call('GET', K.requestResult(requestId))
  if previous then return previous end
end
local driverId = createDriver(ARGV[4], nil)
if requestId ~= '' then redis.call('SET', K.requestResult(requestId), driverId, 'EX', 86400) end
return driverId
