-- moonwire_alloc.lua MODE URL WARMUP N SIZE KIND: the recv/send/echo modes of the bench
-- with a counting window for alloc_shim.c: after WARMUP messages the window opens, after
-- N more it closes (send: when the server has them all). Run by scripts/bench/alloc.sh.
-- MODE corecv: recv through conn:receive() in a coroutine (mw.spawn, mw.connect).
-- KIND json: the lines of $BENCH_JSON, message i line i % lines (the compressed cases);
-- "EXT <what the handshake agreed>" goes to stderr at the handshake.
local mw = require "moonwire"
local mode, url = arg[1], arg[2]
local warmup, n, size, kind = tonumber(arg[3]), tonumber(arg[4]), tonumber(arg[5]), arg[6]
local function mark(what) io.open("/__allocmark/" .. what) end
local total = warmup + n
local count = 0

if mode == "corecv" then
  mw.spawn("corecv", function()
    local c = assert(mw.connect(url))
    io.stderr:write("EXT ", c.websocketExtensions or "", "\n")
    while count < total do
      local data, why = c:receive()
      if not data then error("receive: " .. tostring(why) .. " after " .. count) end
      count = count + 1
      if count == warmup then mark("start") elseif count == total then mark("stop") end
    end
  end)
  return
end

local ws = mw.AsyncTcpConnection.new(url)
ws.onError = function(c, code, m) io.stderr:write("error: ", m, "\n") end
local lines
if kind == "json" then
  lines = {}
  local path = assert(os.getenv("BENCH_JSON"), "BENCH_JSON is not set")
  for l in io.lines(path) do lines[#lines + 1] = l end
end

if mode == "recv" then
  ws.onWebSocketConnect = function(c) io.stderr:write("EXT ", c.websocketExtensions or "", "\n") end
  ws.onMessage = function(c, data)
    count = count + 1
    if count == warmup then mark("start") elseif count == total then mark("stop") end
  end
elseif mode == "send" then
  local msg = string.rep("x", size)
  local send = kind == "binary" and ws.sendBinary or ws.sendText
  local nl = lines and #lines
  local function pump(c)
    while count < total and not c:bufferFull() do
      if count == warmup then mark("start") end
      send(c, lines and lines[count % nl + 1] or msg)
      count = count + 1
    end
  end
  ws.onWebSocketConnect = function(c)
    io.stderr:write("EXT ", c.websocketExtensions or "", "\n")
    pump(c)
  end
  ws.onBufferDrain = pump
  ws.onMessage = function(c, data)
    if data == "done" then mark("stop"); c:close() end
  end
elseif mode == "echo" then
  local msg = string.rep("e", size)
  ws.onWebSocketConnect = function(c) c:send(msg) end
  ws.onMessage = function(c, data)
    count = count + 1
    if count == warmup then mark("start") elseif count == total then mark("stop") end
    if count < total then c:send(msg) else c:close() end
  end
end
ws:connect()
