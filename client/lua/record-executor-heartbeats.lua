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
  Cost per beat: one ZADD (plus one HSET with metrics); the key names of each app are
  built once per call.
]]
local now = redisNowMs()
local prefix = '{"at":' .. now .. ',"metrics":'
local beatsKeys, metricsKeys = {}, {}
local codes = {}
for i = 2, #ARGV, 3 do
  local appId, execId, metrics = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local beats = beatsKeys[appId]
  if not beats then
    beats = K.appExecutorBeats(appId)
    beatsKeys[appId] = beats
    metricsKeys[appId] = K.appExecutorMetrics(appId)
  end
  -- XX CH: 1 when an existing member's score changed; 0 when absent, or beaten twice in one ms
  if redis.call('ZADD', beats, 'XX', 'CH', now, execId) == 1 or redis.call('ZSCORE', beats, execId) then
    if metrics ~= '' then redis.call('HSET', metricsKeys[appId], execId, prefix .. metrics .. '}') end
    codes[#codes + 1] = 1
  else
    local raw = redis.call('HGET', K.appExecutors(appId), execId)
    if raw and cjson.decode(raw).state == 'LAUNCHING' then codes[#codes + 1] = 2 else codes[#codes + 1] = 0 end
  end
end
return codes
