--[[
  reapWorkers: the worker-timeout check (Spark's timeOutDeadWorkers), run by any
  master process under the reaper lease.
  ARGV[4] timeoutMs ARGV[5] spark.dead.worker.persistence ARGV[6] max workers to remove per call
  ARGV[7] grace gap (ms): if the previous check ran longer ago than this (a Redis failover,
          or every master down), give every live worker a fresh heartbeat instead of
          reaping: the fleet must not be declared dead at once (Nomad's failover TTL)
  Times are Redis's own clock (TIME), the clock the heartbeats are recorded with.
  Returns JSON {"removed":[ids],"culled":n,"more":bool}.
]]
local timeout = tonumber(ARGV[4])
local persistence = tonumber(ARGV[5])
local limit = tonumber(ARGV[6])
local graceGap = tonumber(ARGV[7])
local now = redisNowMs()
local lastRun = tonumber(redis.call('GET', K.reaperLastRun) or '0')
if lastRun > 0 and now - lastRun > graceGap then
  local live = redis.call('ZRANGE', K.heartbeats, 0, -1)
  for _, id in ipairs(live) do redis.call('ZADD', K.heartbeats, now, id) end
  redis.call('SET', K.reaperLastRun, now)
  return J({{'removed', '[]'}, {'culled', '0'}, {'more', 'false'}, {'graced', js(#live)}})
end
local silent = redis.call('ZRANGEBYSCORE', K.heartbeats, '-inf', '(' .. (now - timeout), 'LIMIT', 0, limit + 1)
local removed = {}
local seconds = math.floor(timeout / 1000)
for i, id in ipairs(silent) do
  if i > limit then break end
  if removeWorker(id, 'Not receiving heartbeat for ' .. seconds .. ' seconds') then
    removed[#removed + 1] = id
  else
    redis.call('ZREM', K.heartbeats, id)
  end
end
local culled = 0
local forget = redis.call('ZRANGEBYSCORE', K.deadWorkers, '-inf', '(' .. (now - (persistence + 1) * timeout), 'LIMIT', 0, limit)
for _, id in ipairs(forget) do
  deleteWorkerKeys(id)
  culled = culled + 1
end
redis.call('SET', K.reaperLastRun, now)
local removedJson = '[]'
if #removed > 0 then removedJson = cjson.encode(removed) end
return J({{'removed', removedJson}, {'culled', js(culled)}, {'more', js(#silent > limit)}})
