-- moonwire echo client for the conformance suite (spec/conformance/run.py).
--   moonwire spec/conformance/echo_client.lua ws://127.0.0.1:PORT/case/<id>
-- Echoes every text/binary message back with the same type; moonwire answers pings and
-- closes by itself. The loop ends, and moonwire exits, when the connection is closed.
local mw = require "moonwire"

local c = mw.AsyncTcpConnection.new(arg[1])
c.maxPackageSize = 64 * 1024 * 1024
c.onMessage = function(conn, data, kind)
  if kind == "text" then
    conn:sendText(data)
  else
    conn:sendBinary(data)
  end
end
c.onError = function(conn, code, msg)
  io.stderr:write("echo_client: error ", tostring(code), ": ", tostring(msg), "\n")
end
c:connect()
