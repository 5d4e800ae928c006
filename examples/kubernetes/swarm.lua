-- swarm.lua: one shard of a bot swarm. Many copies run at once (a Kubernetes Indexed
-- Job, or systemd instances), each with its own JOB_COMPLETION_INDEX; each takes every
-- SHARD_COUNT-th target starting at its index, and numbers its bots from
-- index * BOTS_PER_SHARD so no two shards share a bot id.
--
--   JOB_COMPLETION_INDEX=0 SHARD_COUNT=4 moonwire swarm.lua targets.txt
--
-- targets.txt: one ws:// or wss:// URL a line. Environment: BOTS (per target, default
-- 1), DURATION (seconds, default: until stopped), SHARD_COUNT (default 1).
local mw = require "moonwire"

local function env_int(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  local n = math.tointeger(tonumber(v))
  if not n or n < 0 then error(("%s must be a whole number >= 0, got %q"):format(name, v), 0) end
  return n
end

local index = env_int("JOB_COMPLETION_INDEX", 0)
local shards = env_int("SHARD_COUNT", 1)
local bots = env_int("BOTS", 1)
local duration = tonumber(os.getenv("DURATION") or "")
if shards < 1 or index >= shards then
  error(("JOB_COMPLETION_INDEX %d is outside SHARD_COUNT %d"):format(index, shards), 0)
end

local all = {}
local path = arg[1] or error("usage: swarm.lua targets.txt", 0)
for line in assert(io.open(path)):lines() do
  if line:match("^%s*wss?://") then all[#all + 1] = line:match("^%s*(%S+)") end
end
local mine = {}
for i = index + 1, #all, shards do mine[#mine + 1] = all[i] end

-- ids: a shard's block of the id space (the most a shard can hold: every target)
local per_shard = math.ceil(#all / shards) * bots
local first_id = index * per_shard
io.stdout:setvbuf("line")
print(("SHARD %d/%d targets %s first_id %d"):format(index, shards, table.concat(mine, ","), first_id))

local lat = mw.histogram { name = "echo_rtt" }
local conns, id = {}, first_id
for _, url in ipairs(mine) do
  for _ = 1, bots do
    local bot, sent_at = id, 0
    local c = mw.AsyncTcpConnection.new(url, { name = "swarm" })
    c.reconnect = true
    c.websocketPingInterval = 10
    c.onWebSocketConnect = function(c) sent_at = mw.now(); c:send("hello from bot " .. bot) end
    c.onMessage = function(_, data)
      lat:record(mw.now() - sent_at)
      print(("ECHO %s bot %d %s"):format(url, bot, data))
    end
    c.onError = function(_, code, msg) io.stderr:write(("bot %d: %s\n"):format(bot, msg)) end
    c:connect()
    conns[#conns + 1] = c
    id = id + 1
  end
end

if duration then
  mw.Timer.add(duration, function()
    for _, c in ipairs(conns) do c:close() end
    print(("DONE echoes %d p99 %.3f ms"):format(lat:count(), (lat:percentile(99) or 0) * 1e3))
  end, false)
end
