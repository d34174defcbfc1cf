--[[
  claimSilentExecutors: the expiry check of the applications' heartbeat receivers (Spark's
  HeartbeatReceiver.expireDeadHosts), decided in Redis so that however many processes run
  it (AppClients, app API replicas) each silent executor is expired once.
  An app with executor heartbeats on is due every spark.network.timeoutInterval
  (apps:executor-beat-checks, score = when its next check is due). For a due app, every
  executor whose last heartbeat is older than spark.network.timeout is claimed: the claim
  (app:<id>:executor-expiries) makes every other caller skip it, and the claimant asks the
  master to KillExecutors with Spark's reason. A claimant that dies before asking is covered:
  a claim older than the timeout may be taken again. The master's kill forgets the executor.
  KEYS[1] apps:executor-beat-checks (routes the call)  ARGV[1] the cluster namespace
  ARGV[2] one app id to check (an AppClient checks its own app) or '' for every due app
  ARGV[3] most apps per call  ARGV[4] most executors claimed per app per call
  Work: O(due apps + silent executors).
  Returns JSON [[appId, execId, msSinceLastHeartbeat, timeoutMs], ...].
]]
local now = redisNowMs()
local only, appLimit, execLimit = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local due
if only ~= '' then
  local at = redis.call('ZSCORE', K.executorBeatChecks, only)
  due = {}
  if at and tonumber(at) <= now then due[1] = only end
else
  due = redis.call('ZRANGEBYSCORE', K.executorBeatChecks, '-inf', now, 'LIMIT', 0, appLimit)
end
local claimed = {}
for _, appId in ipairs(due) do
  local a = redis.call('HMGET', K.app(appId), 'state', 'hbTimeoutMs', 'hbCheckMs')
  if not a[1] or (a[1] ~= 'WAITING' and a[1] ~= 'RUNNING') or not a[2] then
    redis.call('ZREM', K.executorBeatChecks, appId)
  else
    local timeout = tonumber(a[2])
    local silent = redis.call('ZRANGEBYSCORE', K.appExecutorBeats(appId), '-inf', '(' .. (now - timeout), 'WITHSCORES', 'LIMIT', 0, execLimit)
    for i = 1, #silent, 2 do
      local execId, lastSeen = silent[i], tonumber(silent[i + 1])
      local claimedAt = tonumber(redis.call('HGET', K.appExecutorExpiries(appId), execId) or '0')
      if claimedAt == 0 or now - claimedAt > timeout then
        redis.call('HSET', K.appExecutorExpiries(appId), execId, now)
        claimed[#claimed + 1] = cjson.encode(appId) .. ',' .. execId .. ',' .. (now - lastSeen) .. ',' .. timeout
      end
    end
    redis.call('ZADD', K.executorBeatChecks, now + tonumber(a[3]), appId)
  end
end
if #claimed == 0 then return '[]' end
return '[[' .. table.concat(claimed, '],[') .. ']]'
