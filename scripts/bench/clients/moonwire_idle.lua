-- moonwire_idle.lua URL N: open N WebSocket connections to the bench server's /idle
-- (at most 500 handshakes in flight), then report resident memory before and after.
-- moonwire_idle.lua URL N exchange: the memory case of compression (/zidle?pmd=1): each
-- connection gets one message, sends it back, and counts once the server's "ok" says the
-- message came back whole (so both directions have used their zlib state).
local mw = require "moonwire"
local url, n, exchange = arg[1], tonumber(arg[2]), arg[3] == "exchange"
local INFLIGHT = 500

local function rss_kb()
  for line in io.lines("/proc/self/status") do
    local v = line:match("^VmRSS:%s+(%d+)")
    if v then return tonumber(v) end
  end
end

local conns, started, open = {}, 0, 0
local before = rss_kb()
local t0 = mw.now()

local function report()
  local after = rss_kb()
  io.write(string.format("RESULT msgs=%d bytes=0 secs=%.6f rss_before_kb=%d rss_after_kb=%d\n",
    open, mw.now() - t0, before, after))
  io.flush()
  for _, c in ipairs(conns) do c:destroy() end
end

local start_one
local function on_open()
  open = open + 1
  if open == n then
    -- let the loop settle once before measuring
    mw.Timer.add(0.2, report, nil, false)
  else
    start_one()
  end
end

start_one = function()
  if started >= n then return end
  started = started + 1
  local c = mw.AsyncTcpConnection.new(url)
  if exchange then
    c.onMessage = function(conn, data)
      if data == "ok" then on_open()
      elseif data == "bad" then io.stderr:write("error: the server got our message back wrong\n"); os.exit(1)
      else conn:send(data) end
    end
  else
    c.onWebSocketConnect = on_open
  end
  c.onError = function(_, code, m) io.stderr:write("error: ", m, "\n") end
  conns[started] = c
  c:connect()
end

for _ = 1, math.min(INFLIGHT, n) do start_one() end
