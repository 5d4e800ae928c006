-- moonwire_recv.lua URL N [CAFILE]: receive N messages from the bench server's /flood
-- through a real onMessage; the clock runs from the handshake to the N-th message.
local mw = require "moonwire"
local url, n, cafile = arg[1], tonumber(arg[2]), arg[3]
local got, bytes, t0 = 0, 0, nil

local opts = cafile and { ssl = { cafile = cafile } } or nil
local ws = mw.AsyncTcpConnection.new(url, opts)
ws.onWebSocketConnect = function(c)
  t0 = mw.now()
  io.write("INFO ext=", ((c.websocketExtensions or ""):gsub(" ", "")), "\n")
  if c.tlsInfo then
    local info = c:tlsInfo()
    if type(info) == "table" then io.write("INFO cipher=", tostring(info.cipher), "\n") end
  end
end
ws.onMessage = function(c, data)
  got = got + 1
  bytes = bytes + #data
  if got == n then
    io.write(string.format("RESULT msgs=%d bytes=%d secs=%.6f\n", got, bytes, mw.now() - t0))
    io.flush()
  end
end
ws.onError = function(c, code, msg) io.stderr:write("error: ", msg, "\n") end
ws:connect()
