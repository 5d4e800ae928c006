-- moonwire_send.lua URL N SIZE [text|binary]: send N messages of SIZE bytes from a Lua
-- loop to the bench server's /sink, which answers "done" after the N-th. The loop sends
-- until the send buffer is full (maxSendBufferSize, 1 MiB by default) and resumes on
-- onBufferDrain, as a script that must not drop messages does.
-- KIND json: the messages are the lines of $BENCH_JSON (scripts/bench/jsonmsgs.py), message
-- i being line i % lines, as text; compression is moonwire's default (the offer is made in
-- every case; the bench server accepts it only where the URL says pmd=1).
local mw = require "moonwire"
local url, n, size, kind = arg[1], tonumber(arg[2]), tonumber(arg[3]), arg[4] or "text"
local msg = string.rep("x", size)
local lines
if kind == "json" then
  lines = {}
  local path = assert(os.getenv("BENCH_JSON"), "BENCH_JSON is not set")
  for l in io.lines(path) do lines[#lines + 1] = l end
end
local sent, t0 = 0, nil

local ws = mw.AsyncTcpConnection.new(url)
local send = kind == "binary" and ws.sendBinary or ws.sendText

local pump
if lines then
  local count = #lines
  pump = function(c)
    while sent < n and not c:bufferFull() do
      send(c, lines[sent % count + 1])
      sent = sent + 1
    end
  end
else
  pump = function(c)
    while sent < n and not c:bufferFull() do
      send(c, msg)
      sent = sent + 1
    end
  end
end

ws.onWebSocketConnect = function(c)
  t0 = mw.now()
  io.write("INFO ext=", ((c.websocketExtensions or ""):gsub(" ", "")), "\n")
  pump(c)
end
ws.onBufferDrain = pump
ws.onMessage = function(c, data)
  if data == "done" then
    io.write(string.format("RESULT msgs=%d bytes=%d secs=%.6f\n", sent, sent * size, mw.now() - t0))
    io.flush()
    c:close()
  end
end
ws.onError = function(c, code, m) io.stderr:write("error: ", m, "\n") end
ws:connect()
