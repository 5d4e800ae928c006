-- ws_echo: connect to a WebSocket server, send a few messages, print the echoes,
-- then close the connection cleanly.
--   moonwire examples/ws_echo.lua ws://127.0.0.1:8080/echo
local mw = require "moonwire"

local url = arg[1] or "ws://127.0.0.1:8080/"
local ws = mw.AsyncTcpConnection.new(url)
local lines = { "hello", "from", "moonwire" }
local got = 0

ws.onWebSocketConnect = function(conn)
  print("connected to " .. conn.url)
  for _, line in ipairs(lines) do conn:send(line) end
end

ws.onMessage = function(conn, data, kind)
  got = got + 1
  print(("echo %d (%s): %s"):format(got, kind, data))
  if got == #lines then conn:close(1000, "done") end
end

ws.onError = function(_, code, msg) print("error " .. code .. ": " .. msg) end
ws.onClose = function() print("closed") end
ws:connect()
