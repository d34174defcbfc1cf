--[[
  expireAppLeases: Spark's Master.onDisconnected → finishApplication, leaderless. Every
  registered application holds a client lease (apps:leases, score = the last renewal on
  Redis's clock); any master process runs this check in its periodic loop (under the
  reaper lease) and finishes each app whose lease lapsed exactly as removeApplication does
  for an unregister: executors killed (KillExecutor to their workers), cores freed,
  FINISHED, ApplicationRemoved sent (with the reason), put on the completed list (trimmed).
  ARGV[4] spark.flint.app.timeout (ms)  ARGV[5] most apps to finish per call
  ARGV[6] grace gap (ms): if the previous check ran longer ago than this (every master down,
          or a Redis failover during which no client could renew), every lease is renewed
          instead: clients must not be declared gone because Redis was.
  Keys: apps:leases, apps:leases:last-run, and what removeApplication touches.
  Work: O(apps expired) per call (ZRANGEBYSCORE on the lease zset), O(apps) only in a grace.
  Returns JSON {"expired":[ids],"more":bool[,"graced":n]}.
  Events: ApplicationRemoved (app and cluster) per finished app.
]]
local timeout = tonumber(ARGV[4])
local limit = tonumber(ARGV[5])
local graceGap = tonumber(ARGV[6])
local now = redisNowMs()
local lastRun = tonumber(redis.call('GET', K.appLeaseCheckLastRun) or '0')
redis.call('SET', K.appLeaseCheckLastRun, now)
if lastRun > 0 and now - lastRun > graceGap then
  local live = redis.call('ZRANGE', K.appLeases, 0, -1)
  for _, id in ipairs(live) do redis.call('ZADD', K.appLeases, now, id) end
  return J({{'expired', '[]'}, {'more', 'false'}, {'graced', js(#live)}})
end
local lapsed = redis.call('ZRANGEBYSCORE', K.appLeases, '-inf', '(' .. (now - timeout), 'LIMIT', 0, limit + 1)
local expired = {}
for i, appId in ipairs(lapsed) do
  if i > limit then break end
  if removeApplication(appId, 'FINISHED', 'its client did not renew its lease for ' .. timeout .. ' ms') then
    expired[#expired + 1] = appId
  else
    redis.call('ZREM', K.appLeases, appId)
  end
end
local expiredJson = '[]'
if #expired > 0 then expiredJson = cjson.encode(expired) end
return J({{'expired', expiredJson}, {'more', js(#lapsed > limit)}})
