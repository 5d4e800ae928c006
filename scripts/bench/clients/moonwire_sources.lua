-- moonwire_sources.lua URL N [SOURCES]: open N WebSocket connections to URL (at most
-- 200 handshakes in flight), the i-th from source address SOURCES[i % #SOURCES] (a
-- comma-separated list for bindto, e.g. 127.0.0.1,127.0.0.2,127.0.0.3; none: the
-- kernel's choice), then print one line: how many opened and failed, the time it took,
-- resident KiB per open connection, and the first error. Used by spec/eyeballs_spec.lua
-- (the ephemeral ports of one source) and by scripts/bench/run.sh (issue 14's 60,000).
local mw = require "moonwire"
local url, n = arg[1], tonumber(arg[2])
local sources = {}
for s in (arg[3] or ""):gmatch("[^,]+") do sources[#sources + 1] = s end
local INFLIGHT = 200
local started, open, failed, first = 0, 0, 0, nil
local conns = {}

local function rss_kb()
  for line in io.lines("/proc/self/status") do
    local v = line:match("^VmRSS:%s+(%d+)")
    if v then return tonumber(v) end
  end
end

local before, t0 = rss_kb(), mw.now()
local start_one

local function settled()
  if open + failed < n then start_one() return end
  print(("RESULT open=%d failed=%d secs=%.3f kib_per_conn=%.2f first_error=%s"):format(open, failed,
    mw.now() - t0, (rss_kb() - before) / math.max(1, open), first or "-"))
  io.stdout:flush()
  for _, c in ipairs(conns) do c:destroy() end
end

start_one = function()
  if started >= n then return end
  started = started + 1
  local c = mw.AsyncTcpConnection.new(url, { websocketCompression = false })
  if #sources > 0 then c.bindto = sources[started % #sources + 1] end
  conns[#conns + 1] = c
  local counted = false
  c.onWebSocketConnect = function() open = open + 1 settled() end
  c.onError = function(_, _, msg)
    if counted then return end
    counted = true
    failed = failed + 1
    first = first or msg
    settled()
  end
  c:connect()
end

for _ = 1, INFLIGHT do start_one() end
