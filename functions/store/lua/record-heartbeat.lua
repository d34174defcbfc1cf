--[[
  recordHeartbeat: the master's Heartbeat handler, run in Redis so a beat costs
  one script call and never a queue job.
  ARGV[4] workerId  ARGV[5] epoch
  Returns: 'ok' (recorded), 'reconnect' (the worker is DEAD: ReconnectWorker was
  written to its inbox, as Spark sends it), 'stale' (a newer registration of this
  worker exists: the caller is an old incarnation), 'unknown' (never registered
  or already forgotten: the agent should register again).
]]
local workerId = ARGV[4]
local epoch = ARGV[5]
local w = redis.call('HMGET', K.worker(workerId), 'state', 'epoch')
if not w[1] then return 'unknown' end
if w[1] == 'DEAD' then
  sendWorker(workerId, 'ReconnectWorker', J({{'masterUrl', js(CONF.masterUrl)}}))
  return 'reconnect'
end
if w[2] ~= epoch then return 'stale' end
redis.call('ZADD', K.heartbeats, NOW, workerId)
redis.call('HSET', K.worker(workerId), 'lastHeartbeat', NOW)
return 'ok'
