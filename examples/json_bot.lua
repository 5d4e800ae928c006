-- json_bot: a bot that speaks JSON. It subscribes to a channel, decodes each message,
-- prints the fields of trades, answers pings with pongs, and after `count` trades (if
-- given) unsubscribes and closes. JSON is lua-dkjson on lua-lpeg (scripts/bootstrap.sh
-- installs both; README "JSON" says why): integers stay integers, null is json.null.
--   moonwire examples/json_bot.lua ws://127.0.0.1:8080/ [channel] [count]
local mw = require "moonwire"
local json = require("dkjson").use_lpeg()

local url, channel = arg[1] or "ws://127.0.0.1:8080/", arg[2] or "trades"
local count = tonumber(arg[3])
local trades, last_id = 0, nil

-- The decoded message, or nil and why. `json.null` keeps a null as a value (the default,
-- nil, drops the key); a message must be one JSON value with nothing after it.
local function decode(text)
  local value, pos, err = json.decode(text, 1, json.null)
  if value == nil then return nil, err end
  if text:find("^%s*$", pos) == nil then return nil, "text after the JSON value at byte " .. pos end
  return value
end

local handlers = {}

function handlers.subscribed(conn, msg)
  print(("subscribed to %s (request %d)"):format(msg.channel, msg.id))
end

function handlers.trade(conn, msg)
  trades, last_id = trades + 1, msg.trade_id
  print(("trade %d (%s): %s %s @ %s, fee %s, %d tags"):format(msg.trade_id,
    math.type(msg.trade_id), msg.side, msg.size, msg.price,
    msg.fee == json.null and "null" or tostring(msg.fee), #msg.tags))
  if count and trades == count then
    print(("unsubscribing after %d trades"):format(trades))
    conn:send(json.encode { op = "unsubscribe", channel = channel, last_trade_id = last_id,
      reason = json.null, filters = {} })   -- {} encodes as [] (README "JSON")
    conn:close(1000, "done")
  end
end

function handlers.ping(conn, msg)
  print(("ping %d: pong"):format(msg.id))
  conn:send(json.encode { op = "pong", id = msg.id })
end

local bot = mw.AsyncTcpConnection.new(url)

bot.onWebSocketConnect = function(conn)
  print("connected to " .. conn.url)
  conn:send(json.encode { op = "subscribe", channel = channel, id = 1 })
end

bot.onMessage = function(conn, data)
  local msg, err = decode(data)
  if not msg then
    print("not JSON (" .. err .. "): " .. data)
    return
  end
  local handler = handlers[msg.event or msg.type or msg.op]
  if handler then handler(conn, msg) else print("unknown message: " .. data) end
end

bot.onError = function(_, code, msg) print("error " .. code .. ": " .. msg) end
bot.onClose = function() print("closed") end
bot:connect()
