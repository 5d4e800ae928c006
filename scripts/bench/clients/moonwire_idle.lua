-- moonwire_idle.lua URL N: open N WebSocket connections to the bench server's /idle
-- (at most 500 handshakes in flight), then report resident memory before and after.
local mw = require "moonwire"
local url, n = arg[1], tonumber(arg[2])
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
  c.onWebSocketConnect = on_open
  c.onError = function(_, code, m) io.stderr:write("error: ", m, "\n") end
  conns[started] = c
  c:connect()
end

for _ = 1, math.min(INFLIGHT, n) do start_one() end
