--[[
  recordExecutorHeartbeats: a batch of executor heartbeats absorbed by one app API process
  (Spark's HeartbeatReceiver.receive(Heartbeat)): each beat of an executor the app's
  receiver knows (app:<id>:executor-beats) becomes its last-seen time on Redis's clock;
  a beat with metrics also stores them as the executor's latest (app:<id>:executor-metrics).
  KEYS[1] apps:executor-beat-checks (routes the call)  ARGV[1] the cluster namespace
  ARGV[2..] triples: appId, execId, metrics JSON ('' = none)
  Returns one code per beat: 1 recorded; 2 not registered yet (the executor is still
  LAUNCHING: its first beat came before the agent reported it RUNNING); 0 unknown (no
  such executor, or it has finished: it was expired, killed or its app ended).
]]
local now = redisNowMs()
local codes = {}
for i = 2, #ARGV, 3 do
  local appId, execId, metrics = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local beats = K.appExecutorBeats(appId)
  if redis.call('ZADD', beats, 'XX', 'CH', now, execId) == 1 or redis.call('ZSCORE', beats, execId) then
    if metrics ~= '' then
      redis.call('HSET', K.appExecutorMetrics(appId), execId, '{"at":' .. now .. ',"metrics":' .. metrics .. '}')
    end
    codes[#codes + 1] = 1
  else
    local raw = redis.call('HGET', K.appExecutors(appId), execId)
    if raw and cjson.decode(raw).state == 'LAUNCHING' then codes[#codes + 1] = 2 else codes[#codes + 1] = 0 end
  end
end
return codes
