-- reconnect_bot: a bot that stays connected. The reconnect policy backs off after each
-- failure (0.5 s, 1 s, 2 s ... up to 30 s, less up to 20% of jitter) and onWebSocketConnect
-- logs in and subscribes again after every reconnect; a 4xx answer stops it with a reason.
--   moonwire examples/reconnect_bot.lua ws://127.0.0.1:8080/stream [channel]
local mw = require "moonwire"

local url, channel = arg[1] or "ws://127.0.0.1:8080/", arg[2] or "trades"
local bot = mw.AsyncTcpConnection.new(url, {
  name = "stream",
  reconnect = { min = 0.5, max = 30, factor = 2, jitter = 0.2 },
  websocketPingInterval = 15,
})

bot.onWebSocketConnect = function(conn)
  print("connected to " .. conn.url .. ": subscribing to " .. channel)
  conn:send('{"op":"login","token":"demo"}')
  conn:send(('{"op":"subscribe","channel":"%s"}'):format(channel))
end

bot.onMessage = function(conn, data) print("message: " .. data) end

bot.onReconnect = function(conn, attempt, delay, reason)
  print(("reconnect #%d in %.2fs (%s)"):format(attempt, delay, reason))
end

bot.onError = function(conn, code, msg) print("error: " .. msg) end
bot.onClose = function(conn) print("closed") end

bot:connect()
