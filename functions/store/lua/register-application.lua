--[[
  registerApplication: RegisterApplication → RegisteredApplication.
  ARGV[4] clientId  ARGV[5] ApplicationDescription JSON (validated)
  ARGV[6] explicit app id or '' (spark.master.useAppNameAsAppId.enabled)
  ARGV[7] requested cores (maxCores or spark.deploy.defaultCores)
  ARGV[8] executor limit (-1 = unlimited)  ARGV[9] priority
  Returns JSON {"appId":..., "duplicate":bool}. A repeated registration from the same
  client returns the same id (Spark silently drops a second registration from one
  driver address; Flint answers it idempotently instead).
]]
local clientId = ARGV[4]
local existing = redis.call('HGET', K.appsByClient, clientId)
if existing then
  return J({{'appId', js(existing)}, {'duplicate', 'true'}})
end
local n = redis.call('INCR', K.appSeq) - 1
local appId = ARGV[6]
if appId == '' then
  local number = n
  if CONF.appNumberModulo and CONF.appNumberModulo ~= cjson.null then number = n % CONF.appNumberModulo end
  appId = string.format(CONF.appIdPattern, CONF.ts, number)
end
if redis.call('EXISTS', K.app(appId)) == 1 then
  return J({{'error', js('application id ' .. appId .. ' is already in use')}})
end
local desc = cjson.decode(ARGV[5])
local priority = tonumber(ARGV[9])
redis.call('HSET', K.app(appId),
  'id', appId, 'clientId', clientId, 'name', desc.name, 'user', desc.user or '<unknown>', 'desc', ARGV[5],
  'state', 'WAITING', 'coresGranted', 0, 'requestedCores', ARGV[7], 'executorLimit', ARGV[8],
  'liveExecutors', 0, 'retryCount', 0, 'nextExecutorId', 0, 'startTime', NOW, 'endTime', -1,
  'seq', n, 'priority', priority)
-- scheduling order: higher priority first, then FIFO by registration
redis.call('ZADD', K.appsWaiting, -priority * 1e12 + n, appId)
redis.call('HSET', K.appsByClient, clientId, appId)
emitApp(appId, 'RegisteredApplication', J({{'appId', js(appId)}, {'masterUrl', js(CONF.masterUrl)}}))
emitCluster('ApplicationRegistered', J({{'appId', js(appId)}}))
markDirty()
return J({{'appId', js(appId)}, {'duplicate', 'false'}})
