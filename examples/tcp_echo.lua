-- tcp_echo.lua: send a few lines to a line echo server, print the echoes, close.
-- usage: moonwire examples/tcp_echo.lua text://127.0.0.1:PORT [line ...]
-- The process exits by itself (status 0) once the connection is closed: nothing is
-- left active on the loop.
local mw = require "moonwire"

local url = arg[1] or "text://127.0.0.1:7000"
local lines = { select(2, ...) }
if #lines == 0 then lines = { "hello", "moonwire", "bye" } end

local conn = mw.AsyncTcpConnection.new(url)
local echoed = 0

conn.onConnect = function(c)
  print("connected to " .. c:getRemoteAddress())
  for _, line in ipairs(lines) do
    print("> " .. line)
    c:send(line)          -- text:// appends the newline
  end
end

conn.onMessage = function(c, data)
  echoed = echoed + 1
  print("< " .. data)
  if echoed == #lines then c:close() end
end

conn.onError = function(_, code, msg)
  io.stderr:write(string.format("error %d: %s\n", code, msg))
end

conn.onClose = function()
  print(string.format("closed after %d of %d echoes", echoed, #lines))
end

conn:connect()
