-- seed: Workerman's AsyncTcpConnection ws:// client, translated line by line.
-- It pings every 55 s, sends a cookie header, and reconnects a second after any
-- close, forever: stop it with Ctrl-C.
--   moonwire examples/seed.lua ws://127.0.0.1:1234
local mw = require "moonwire"
local Worker, AsyncTcpConnection, Ws = mw.Worker, mw.AsyncTcpConnection, mw.Ws

local worker = Worker.new()
worker.onWorkerStart = function()
  local ws = AsyncTcpConnection.new(arg[1] or "ws://127.0.0.1:1234")
  ws.websocketPingInterval = 55                 -- send a ping (opcode 0x9) every 55 s
  ws.headers = { Cookie = "PHPSID=82u98fjhakfusuanfnahfi; token=2hf9a929jhfihaf9i",
                 OtherKey = "values" }
  ws.websocketType = Ws.BINARY_TYPE_BLOB        -- text frames; BINARY_TYPE_ARRAYBUFFER: binary
  ws.onConnect = function(conn) print("tcp connected") end
  ws.onWebSocketConnect = function(conn, response) print(response); conn:send("hello") end
  ws.onMessage = function(conn, data) print("recv: " .. data) end
  ws.onError = function(conn, code, msg) print("error: " .. msg) end
  ws.onClose = function(conn)
    print("connection closed and try to reconnect")
    conn:reConnect(1)
  end
  ws:connect()
end
Worker.runAll()
