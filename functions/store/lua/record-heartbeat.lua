--!standalone (no prelude: a beat must cost little more than the writes it makes)
--[[
  recordHeartbeat: the master's Heartbeat handler, run in Redis so a beat costs
  one script call and never a queue job.
  KEYS[1] the worker's hash (read only)  KEYS[2] the heartbeats zset  KEYS[3] the worker's inbox
  ARGV[1] workerId  ARGV[2] epoch  ARGV[3] ReconnectWorker body (JSON)
  The beat is timed with Redis's clock (TIME), like everything the worker-timeout
  check compares with, so no host's clock drift matters.
  Returns: 'ok' (recorded), 'reconnect' (the worker is DEAD: ReconnectWorker was
  written to its inbox, as Spark sends it), 'stale' (a newer registration of this
  worker exists: the caller is an old incarnation), 'unknown' (never registered
  or already forgotten: the agent should register again).
]]
local w = redis.call('HMGET', KEYS[1], 'state', 'epoch')
if not w[1] then return 'unknown' end
if w[1] == 'DEAD' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', 10000, '*', 'type', 'ReconnectWorker', 'body', ARGV[3])
  return 'reconnect'
end
if w[2] ~= ARGV[2] then return 'stale' end
-- the zset is the only place a beat is written (readers take a live worker's last beat from it)
local t = redis.call('TIME')
redis.call('ZADD', KEYS[2], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), ARGV[1])
return 'ok'
