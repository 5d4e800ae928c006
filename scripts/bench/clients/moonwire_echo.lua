-- moonwire_echo.lua URL N SIZE: N sequential round trips of a SIZE-byte text message
-- with the bench server's /echo: each reply's onMessage sends the next message.
local mw = require "moonwire"
local url, n, size = arg[1], tonumber(arg[2]), tonumber(arg[3])
local msg = string.rep("e", size)
local done, t0 = 0, nil

local ws = mw.AsyncTcpConnection.new(url)
ws.onWebSocketConnect = function(c) t0 = mw.now(); c:send(msg) end
ws.onMessage = function(c, data)
  done = done + 1
  if done < n then
    c:send(msg)
  else
    io.write(string.format("RESULT msgs=%d bytes=%d secs=%.6f\n", done, done * size, mw.now() - t0))
    io.flush()
    c:close()
  end
end
ws.onError = function(c, code, m) io.stderr:write("error: ", m, "\n") end
ws:connect()
