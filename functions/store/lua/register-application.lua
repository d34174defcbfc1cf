--[[
  registerApplication: RegisterApplication → RegisteredApplication.
  ARGV[4] clientId  ARGV[5] ApplicationDescription JSON (validated)
  ARGV[6] explicit app id or '' (spark.master.useAppNameAsAppId.enabled)
  ARGV[7] requested cores (maxCores or spark.deploy.defaultCores)
  ARGV[8] executor limit (-1 = unlimited)  ARGV[9] priority
  ARGV[10] a new application key (hex; kept only if the app is new)
  ARGV[11] registrar: SHA-256 of the registering credential, or ''
  ARGV[12] driver id the app belongs to (spark.flint.driver.id), or ''
  ARGV[13] executor heartbeats: JSON {url, intervalMs, maxFailures} for LaunchExecutor, or '' (off)
  ARGV[14] spark.network.timeout (ms)  ARGV[15] spark.network.timeoutInterval (ms)  (with ARGV[13])
  Keys: the app's hash and secret, apps:waiting, apps:by-client, apps:leases,
  apps:executor-beat-checks, driver:<id>:apps; the app's event stream and the cluster's.
  Returns JSON {"appId":..., "duplicate":bool} or {"error":...}. A repeated registration
  from the same client returns the same id and, from the same registrar, renews the app's
  lease (the caller refuses another registrar's duplicate with 409) (Spark silently
  drops a second registration from one driver address; Flint answers it idempotently).
  A new app's client lease starts now (Redis's clock): the master finishes the app when it
  lapses for spark.flint.app.timeout (expire-app-leases.lua).
  Events: RegisteredApplication (app), ApplicationRegistered (cluster).
]]
local clientId = ARGV[4]
local existing = redis.call('HGET', K.appsByClient, clientId)
if existing then
  -- only the credential that registered it renews it: a clientId another caller learned keeps nothing alive
  if redis.call('HGET', K.appSecret(existing), 'registrar') == ARGV[11] then
    redis.call('ZADD', K.appLeases, 'XX', redisNowMs(), existing)
  end
  return J({{'appId', js(existing)}, {'duplicate', 'true'}})
end
local driverId = ARGV[12]
if driverId ~= '' and redis.call('SISMEMBER', K.driversActive, driverId) == 0 then
  return J({{'error', js('spark.flint.driver.id names driver ' .. driverId .. ', which is not running (finished or unknown)')}})
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
redis.call('HSET', K.appSecret(appId), 'key', ARGV[10], 'registrar', ARGV[11])
local now = redisNowMs()
redis.call('ZADD', K.appLeases, now, appId)
if driverId ~= '' then
  redis.call('HSET', K.app(appId), 'driverId', driverId)
  redis.call('SADD', K.driverApps(driverId), appId)
end
if ARGV[13] ~= '' then
  redis.call('HSET', K.app(appId), 'heartbeat', ARGV[13], 'hbTimeoutMs', ARGV[14], 'hbCheckMs', ARGV[15])
  redis.call('ZADD', K.executorBeatChecks, now + tonumber(ARGV[15]), appId)
end
-- scheduling order: higher priority first, then FIFO by registration
redis.call('ZADD', K.appsWaiting, -priority * 1e12 + n, appId)
redis.call('HSET', K.appsByClient, clientId, appId)
emitApp(appId, 'RegisteredApplication', J({{'appId', js(appId)}, {'masterUrl', js(CONF.masterUrl)}}))
emitCluster('ApplicationRegistered', J({{'appId', js(appId)}}))
markDirty()
return J({{'appId', js(appId)}, {'duplicate', 'false'}})
