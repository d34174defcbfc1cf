--[[
  registerWorker: RegisterWorker with Spark 4's rules.
  ARGV[4] JSON of the RegisterWorker message (validated by the handler)
  Returns JSON: {"type":"RegisteredWorker","epoch":n,"duplicate":bool}
             or {"type":"RegisterWorkerFailed","message":"..."}
  - id already live (ALIVE/UNKNOWN/DECOMMISSIONED) and registered by another agent
    instance (`instance`, a token kept in the agent's work dir): refused with Spark's
    "Duplicate worker ID" (two agents must never share a worker id).
  - id already live and the same instance (or no instance on either side, older agents):
    duplicate=true, same epoch, state UNKNOWN becomes ALIVE; the agent keeps its executors
    (an agent restart before the timeout loses nothing).
  - otherwise: DEAD entries at the same host:port are dropped; a live worker at that
    address is replaced if UNKNOWN, else the registration is refused; the worker is
    registered with a new epoch (commands to older incarnations are refused by the agent).
  - a duplicate from another address (an agent restarted on its work dir keeps its id but
    may listen on another port) moves the worker to that address, under the same rule.
]]
local msg = cjson.decode(ARGV[4])
local id = msg.id
local address = msg.host .. ':' .. msg.port

-- freeAddressFor: nil when `claimant` may take `address` (an UNKNOWN holder is replaced), else the refusal message.
local function freeAddressFor(claimant)
  local holder = redis.call('HGET', K.workersByAddress, address)
  if holder and holder ~= claimant then
    local holderState = redis.call('HGET', K.worker(holder), 'state')
    if holderState == 'UNKNOWN' then
      removeWorker(holder, 'Worker replaced by a new worker with same address')
    elseif holderState and holderState ~= 'DEAD' then
      return 'Attempted to re-register worker at same address: ' .. address
    end
  end
  return nil
end

local instance = msg.instance or ''
local state = redis.call('HGET', K.worker(id), 'state')
if state and state ~= 'DEAD' then
  local holder = redis.call('HGET', K.worker(id), 'instance') or ''
  if holder ~= '' and instance ~= '' and holder ~= instance then
    return J({{'type', js('RegisterWorkerFailed')}, {'message', js('Duplicate worker ID')}})
  end
  if holder == '' and instance ~= '' then redis.call('HSET', K.worker(id), 'instance', instance) end
  local old = redis.call('HMGET', K.worker(id), 'host', 'port', 'webUiUrl')
  local oldAddress = tostring(old[1]) .. ':' .. tostring(old[2])
  if oldAddress ~= address then
    local refused = freeAddressFor(id)
    if refused then return J({{'type', js('RegisterWorkerFailed')}, {'message', js(refused)}}) end
    if redis.call('HGET', K.workersByAddress, oldAddress) == id then redis.call('HDEL', K.workersByAddress, oldAddress) end
    redis.call('HSET', K.workersByAddress, address, id)
    redis.call('HSET', K.worker(id), 'host', msg.host, 'port', msg.port)
  end
  if old[3] ~= (msg.webUiUrl or '') then redis.call('HSET', K.worker(id), 'webUiUrl', msg.webUiUrl or '') end
  if state == 'UNKNOWN' then redis.call('HSET', K.worker(id), 'state', 'ALIVE') end
  -- the compact snapshot carries the state and the address
  if state == 'UNKNOWN' or oldAddress ~= address then refreshSchedulable(id) end
  redis.call('ZADD', K.heartbeats, redisNowMs(), id)
  redis.call('HSET', K.worker(id), 'lastHeartbeat', NOW)
  local epoch = tonumber(redis.call('HGET', K.worker(id), 'epoch'))
  emitCluster('WorkerReregistered', J({{'id', js(id)}}))
  markDirty()
  return J({{'type', js('RegisteredWorker')}, {'epoch', js(epoch)}, {'duplicate', 'true'}})
end

local refused = freeAddressFor(id)
if refused then return J({{'type', js('RegisterWorkerFailed')}, {'message', js(refused)}}) end
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
  'registeredAt', NOW, 'lastHeartbeat', NOW, 'instance', instance)
redis.call('SADD', K.workersAll, id)
redis.call('HSET', K.workersByAddress, address, id)
redis.call('ZADD', K.heartbeats, redisNowMs(), id)
refreshSchedulable(id)
emitCluster('WorkerRegistered', J({{'id', js(id)}, {'epoch', js(epoch)}}))
markDirty()
return J({{'type', js('RegisteredWorker')}, {'epoch', js(epoch)}, {'duplicate', 'false'}})
