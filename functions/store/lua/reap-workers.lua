--[[
  reapWorkers: the worker-timeout check (Spark's timeOutDeadWorkers), run by any
  master process under the reaper lease.
  ARGV[4] timeoutMs ARGV[5] spark.dead.worker.persistence ARGV[6] max workers to remove per call
  ARGV[7] grace: '1' to give every live worker a fresh heartbeat instead of reaping
          (first run after a long gap: a Redis failover or all masters down must not
          declare the whole fleet dead at once — Nomad's failover heartbeat TTL)
  Returns JSON {"removed":[ids],"culled":n,"more":bool}.
]]
local timeout = tonumber(ARGV[4])
local persistence = tonumber(ARGV[5])
local limit = tonumber(ARGV[6])
if ARGV[7] == '1' then
  local live = redis.call('ZRANGE', K.heartbeats, 0, -1)
  for _, id in ipairs(live) do redis.call('ZADD', K.heartbeats, NOW, id) end
  redis.call('SET', K.reaperLastRun, NOW)
  return J({{'removed', '[]'}, {'culled', '0'}, {'more', 'false'}, {'graced', js(#live)}})
end
local silent = redis.call('ZRANGEBYSCORE', K.heartbeats, '-inf', '(' .. (NOW - timeout), 'LIMIT', 0, limit + 1)
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
local forget = redis.call('ZRANGEBYSCORE', K.deadWorkers, '-inf', '(' .. (NOW - (persistence + 1) * timeout), 'LIMIT', 0, limit)
for _, id in ipairs(forget) do
  deleteWorkerKeys(id)
  culled = culled + 1
end
redis.call('SET', K.reaperLastRun, NOW)
local removedJson = '[]'
if #removed > 0 then removedJson = cjson.encode(removed) end
return J({{'removed', removedJson}, {'culled', js(culled)}, {'more', js(#silent > limit)}})
