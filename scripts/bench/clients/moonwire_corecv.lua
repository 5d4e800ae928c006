-- moonwire_corecv.lua URL N [CAFILE]: receive N messages from the bench server's /flood
-- through conn:receive() in a coroutine (mw.spawn, mw.connect): the sequential twin of
-- moonwire_recv.lua. The clock runs from the end of the handshake (mw.connect returns)
-- to the N-th message.
local mw = require "moonwire"
local url, n, cafile = arg[1], tonumber(arg[2]), arg[3]

mw.spawn("corecv", function()
  local opts = cafile and { ssl = { cafile = cafile } } or nil
  local c, err = mw.connect(url, opts)
  if not c then io.stderr:write("error: ", err, "\n") return end
  local t0 = mw.now()
  io.write("INFO ext=", ((c.websocketExtensions or ""):gsub(" ", "")), "\n")
  local got, bytes = 0, 0
  while got < n do
    local data, why = c:receive()
    if not data then io.stderr:write("error: receive: ", why, " after ", got, "\n") return end
    got = got + 1
    bytes = bytes + #data
  end
  io.write(string.format("RESULT msgs=%d bytes=%d secs=%.6f\n", got, bytes, mw.now() - t0))
  io.flush()
end)
