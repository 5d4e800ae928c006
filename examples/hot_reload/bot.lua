-- examples/hot_reload/bot.lua: a bot whose behaviour can change while it runs.
--   moonwire --watch examples/hot_reload/bot.lua ws://127.0.0.1:8080/echo
-- Edit this file or handler.lua and save: the bot reloads, its connection stays open.
io.stdout:setvbuf("line")
local mw = require "moonwire"
local handler = require "handler"       -- from this directory: reloaded and watched too

-- Survives reloads: counters, caches, anything that must not start over.
local stats = mw.state("stats", { sent = 0, received = 0, reloads = 0 })

-- Declared at top level (or in onWorkerStart): on a reload this is matched to the live
-- connection by its name, which keeps its socket and takes the new callbacks below.
local feed = mw.AsyncTcpConnection.new(arg[1] or "ws://127.0.0.1:8080/echo", { name = "feed" })

feed.onWebSocketConnect = function(conn)
  print("connected to " .. conn.url)      -- once: a reload does not reconnect
end

feed.onMessage = function(conn, data)
  stats.received = stats.received + 1
  print(handler.describe(data, stats))
end

feed.onClose = function(conn)
  print("closed; reconnecting in 1 s")
  conn:reConnect(1)
end

feed:connect()

-- A declared timer: a reload keeps its schedule (matched by interval and order) and
-- gives it the new function.
mw.Timer.add(1, function()
  if feed:getStatus() == "ESTABLISHED" then
    stats.sent = stats.sent + 1
    feed:send("ping " .. stats.sent)
  end
end)

local worker = mw.Worker.new()
worker.onWorkerReload = function()
  stats.reloads = stats.reloads + 1
  print(("reloaded (%d so far); still on the same connection: %s"):format(stats.reloads, feed:getStatus()))
end
mw.Worker.runAll()
