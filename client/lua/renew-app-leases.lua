--[[
  renewAppLeases: an application's client is alive (the AppClient's renewal timer; the app
  API on each request made with the app's token, while an event stream is open, and on
  POST /v1/apps/:id/heartbeat). Renews the lease of each listed app that still holds one.
  KEYS[1] apps:leases (routes the call)  ARGV[1] the cluster namespace  ARGV[2..] app ids
  The renewal is timed by Redis's clock, the clock expire-app-leases.lua compares with.
  Returns how many of the apps hold a lease (an app finished meanwhile holds none).
]]
local now = redisNowMs()
local renewed = 0
for i = 2, #ARGV do
  if redis.call('ZADD', K.appLeases, 'XX', 'CH', now, ARGV[i]) == 1 or redis.call('ZSCORE', K.appLeases, ARGV[i]) then
    renewed = renewed + 1
  end
end
return renewed
