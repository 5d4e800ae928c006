-- luahttp.lua MODE URL N [SIZE] [KIND]: the bench modes with lua-http (Debian's lua-http
-- on cqueues), written as a user would write them. MODE: recv | send | echo | idle.
-- Debian packages lua-http for Lua 5.1-5.3 only (and its dependencies basexx and fifo
-- for 5.1-5.2), so the bench runs it under lua5.2 unless LUAHTTP_LUA says otherwise.
local websocket = require "http.websocket"
local cqueues = require "cqueues"

local mode, url, n = arg[1], arg[2], tonumber(arg[3])
local size, kind = tonumber(arg[4] or 0), arg[5] or "text"
local now = cqueues.monotime

local function report(msgs, bytes, secs, extra)
  io.write(string.format("RESULT msgs=%d bytes=%d secs=%.6f%s\n", msgs, bytes, secs, extra or ""))
  io.flush()
end

local function open(u)
  local ws = websocket.new_from_uri(u)
  assert(ws:connect())
  return ws
end

local function rss_kb()
  for line in io.lines("/proc/self/status") do
    local v = line:match("^VmRSS:%s+(%d+)")
    if v then return tonumber(v) end
  end
end

local modes = {}

function modes.recv()
  local ws = open(url)
  local t0, got, bytes = now(), 0, 0
  while got < n do
    local data = assert(ws:receive())
    got = got + 1
    bytes = bytes + #data
  end
  report(got, bytes, now() - t0)
  ws:close()
end

function modes.send()
  local ws = open(url)
  local msg = string.rep("x", size)
  local opcode = kind == "binary" and "binary" or "text"
  local t0 = now()
  for _ = 1, n do assert(ws:send(msg, opcode)) end
  local reply = assert(ws:receive())
  assert(reply == "done", reply)
  report(n, n * size, now() - t0)
  ws:close()
end

function modes.echo()
  local ws = open(url)
  local msg = string.rep("e", size)
  local t0 = now()
  for _ = 1, n do
    assert(ws:send(msg))
    assert(ws:receive())
  end
  report(n, n * size, now() - t0)
  ws:close()
end

function modes.idle()
  local cq = cqueues.new()
  local before, t0 = rss_kb(), now()
  local conns, open_count, started = {}, 0, 0
  local INFLIGHT = 500
  local function worker()
    while started < n do
      started = started + 1
      conns[#conns + 1] = open(url)
      open_count = open_count + 1
    end
  end
  for _ = 1, math.min(INFLIGHT, n) do cq:wrap(worker) end
  assert(cq:loop())
  cqueues.sleep(0.2)
  report(open_count, 0, now() - t0, string.format(" rss_before_kb=%d rss_after_kb=%d", before, rss_kb()))
  for _, ws in ipairs(conns) do ws.socket:close() end
end

local cq = cqueues.new()
cq:wrap(modes[mode])
assert(cq:loop())
