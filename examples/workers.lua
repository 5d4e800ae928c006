-- workers: worker.count = 2 runs the bot in two processes (as Workerman does); each
-- opens its own connection in onWorkerStart, sends a greeting naming its id and closes
-- once it is echoed. The parent restarts a worker that crashes; SIGTERM stops both.
--   moonwire examples/workers.lua ws://127.0.0.1:8080/echo
local mw = require "moonwire"

local url = arg[1] or "ws://127.0.0.1:8080/"
local worker = mw.Worker.new()
worker.count = 2

worker.onWorkerStart = function(w)
  -- connections belong here: one made at the top level would be shared by both processes
  local ws = mw.AsyncTcpConnection.new(url)
  ws.onWebSocketConnect = function(conn) conn:send("hello from worker " .. w.id) end
  ws.onMessage = function(conn, data)
    print(("worker %d got: %s"):format(mw.workerId(), data))
    conn:close(1000, "done")
  end
  ws.onError = function(_, code, msg) print("worker " .. w.id .. " error " .. code .. ": " .. msg) end
  ws:connect()
end

worker.onWorkerStop = function(w) print("worker " .. w.id .. " stopped") end

mw.Worker.runAll()
