--[[
  registerWorker: RegisterWorker with Spark 4's rules.
  ARGV[4] JSON of the RegisterWorker message (validated by the handler)
  Returns JSON: {"type":"RegisteredWorker","epoch":n,"duplicate":bool}
             or {"type":"RegisterWorkerFailed","message":"..."}
  - id already live (ALIVE/UNKNOWN/DECOMMISSIONED): duplicate=true, same epoch, state
    UNKNOWN becomes ALIVE; the agent keeps its executors (an agent restart before the
    timeout loses nothing).
  - otherwise: DEAD entries at the same host:port are dropped; a live worker at that
    address is replaced if UNKNOWN, else the registration is refused; the worker is
    registered with a new epoch (commands to older incarnations are refused by the agent).
]]
local msg = cjson.decode(ARGV[4])
local id = msg.id
local address = msg.host .. ':' .. msg.port
local state = redis.call('HGET', K.worker(id), 'state')
if state and state ~= 'DEAD' then
  if state == 'UNKNOWN' then
    redis.call('HSET', K.worker(id), 'state', 'ALIVE')
    refreshSchedulable(id)
  end
  redis.call('ZADD', K.heartbeats, NOW, id)
  redis.call('HSET', K.worker(id), 'lastHeartbeat', NOW)
  local epoch = tonumber(redis.call('HGET', K.worker(id), 'epoch'))
  emitCluster('WorkerReregistered', J({{'id', js(id)}}))
  markDirty()
  return J({{'type', js('RegisteredWorker')}, {'epoch', js(epoch)}, {'duplicate', 'true'}})
end

local holder = redis.call('HGET', K.workersByAddress, address)
if holder and holder ~= id then
  local holderState = redis.call('HGET', K.worker(holder), 'state')
  if holderState == 'UNKNOWN' then
    removeWorker(holder, 'Worker replaced by a new worker with same address')
  elseif holderState and holderState ~= 'DEAD' then
    return J({{'type', js('RegisterWorkerFailed')}, {'message', js('Attempted to re-register worker at same address: ' .. address)}})
  end
end
-- drop DEAD registrations at the same address (Spark: workers.filter(host, port, DEAD))
local dead = redis.call('ZRANGE', K.deadWorkers, 0, -1)
for _, deadId in ipairs(dead) do
  if deadId ~= id then
    local d = redis.call('HMGET', K.worker(deadId), 'host', 'port')
    if d[1] == msg.host and tonumber(d[2]) == tonumber(msg.port) then deleteWorkerKeys(deadId) end
  end
end

local epoch = redis.call('INCR', K.epochSeq)
redis.call('DEL', K.worker(id), K.workerExecutors(id), K.workerDrivers(id))
redis.call('ZREM', K.deadWorkers, id)
local resources = ARGV[5]
redis.call('HSET', K.worker(id),
  'id', id, 'host', msg.host, 'port', msg.port, 'cores', msg.cores, 'memoryMB', msg.memoryMB,
  'coresUsed', 0, 'memoryUsed', 0, 'state', 'ALIVE', 'epoch', epoch, 'webUiUrl', msg.webUiUrl or '',
  'resources', resources, 'resourcesFree', resources, 'labels', ARGV[6],
  'registeredAt', NOW, 'lastHeartbeat', NOW)
redis.call('SADD', K.workersAll, id)
redis.call('HSET', K.workersByAddress, address, id)
redis.call('ZADD', K.heartbeats, NOW, id)
refreshSchedulable(id)
emitCluster('WorkerRegistered', J({{'id', js(id)}, {'epoch', js(epoch)}}))
markDirty()
return J({{'type', js('RegisteredWorker')}, {'epoch', js(epoch)}, {'duplicate', 'false'}})
