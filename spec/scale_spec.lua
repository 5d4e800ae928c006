-- Issue 6, "Scale": one moonwire process holds 10,000 concurrent idle WebSocket
-- connections to a local server and stays under 16 KiB of resident memory per plain ws
-- connection (VmRSS growth / connections, measured by the script itself). moonwire raises
-- its own RLIMIT_NOFILE soft limit to the hard limit; the server (ws_idle_peer.py, one
-- epoll loop) raises its own too. One server port, 10,000 client ephemeral ports.
local H = require "spec.support.helper"

local N = H.valgrind and 1000 or 10000
local BUDGET = 16 * 1024   -- bytes of VmRSS per plain ws connection

local function hard_nofile()
  local f = io.popen("sh -c 'ulimit -Hn'")
  local v = f:read("l")
  f:close()
  return v == "unlimited" and math.huge or tonumber(v)
end

describe("scale (issue 6)", function()
  after_each(H.cleanup)

  it("holds 10,000 concurrent idle ws connections in under 16 KiB of VmRSS each", function()
    local hard = hard_nofile()
    assert(hard and hard >= N + 100, string.format(
      "the hard limit on open files is %s; this spec needs %d (raise it, e.g. ulimit -Hn 65536)",
      tostring(hard), N + 100))
    local srv = H.spawn({ H.python, "-u", H.src .. "/spec/servers/ws_idle_peer.py", "--mode", "idle" },
      { name = "ws_idle_peer" })
    local _, port = srv:wait_line("^PORT (%d+)$", 10)
    local script = H.write_script(H.MEM_LUA .. [==[
      local mw = require "moonwire"
      local A = mw.AsyncTcpConnection
      local url, N, BATCH = arg[1], tonumber(arg[2]), 500
      local conns, open, started, closed = {}, 0, 0, 0
      -- one set of callbacks for all: what is measured is the connection, not closures
      local on_open, on_error, on_close
      local function start_batch()
        for _ = 1, BATCH do
          if started == N then return end
          started = started + 1
          local c = A.new(url)
          c.onWebSocketConnect, c.onError, c.onClose = on_open, on_error, on_close
          c:connect()
          conns[started] = c
        end
      end
      local t0 = mw.now()
      collectgarbage("collect")
      local rss0 = mem("VmRSS")
      on_error = function(conn, code, msg) print("ERROR", code, msg) end
      on_close = function() closed = closed + 1; if closed == N then print("ALL CLOSED") end end
      on_open = function()
        open = open + 1
        if open == N then
          collectgarbage("collect"); collectgarbage("collect")
          local rss1 = mem("VmRSS")
          local nofile = io.open("/proc/self/limits"):read("a"):match("Max open files%s+(%d+)")
          print(string.format("OPEN %d %.2f %d %d %.0f %s", open, mw.now() - t0, rss0, rss1,
            collectgarbage("count"), nofile))
        elseif open % BATCH == 0 then
          start_batch()    -- a batch at a time keeps the server's accept queue short
        end
      end
      start_batch()
    ]==])
    -- started under the usual soft limit of 1024 files: moonwire must raise it itself
    local p = H.spawn({ "/bin/sh", "-c", 'ulimit -Sn 1024 && exec "$0" "$@"', H.bin, script,
      "ws://127.0.0.1:" .. port .. "/", tostring(N) }, { name = "moonwire" })
    p:close_stdin()
    local line = p:wait_line("^OPEN ", 60)
    local secs, rss0, rss1, lua_kib, nofile = line:match("^OPEN %d+ ([%d.]+) (%d+) (%d+) (%d+) (%d+)$")
    assert(secs, line)
    rss0, rss1, lua_kib, nofile = tonumber(rss0), tonumber(rss1), tonumber(lua_kib), tonumber(nofile)
    local per_conn = (rss1 - rss0) * 1024 / N
    print(string.format("\n  %d ws connections open in %.2f s; VmRSS %d -> %d KiB: %.0f bytes per connection " ..
      "(Lua heap %d KiB, %.0f bytes per connection); RLIMIT_NOFILE %d",
      N, tonumber(secs), rss0, rss1, per_conn, lua_kib, lua_kib * 1024 / N, nofile))
    -- the server holds them all at once
    srv:send("COUNT\n")
    srv:wait_line("^COUNT " .. N .. " " .. N .. "$", 10)
    assert.equal(0, #p:grep("^ERROR"), p:describe())
    assert(nofile >= N, "moonwire did not raise its file limit: " .. nofile)
    if not H.sanitized and not H.valgrind then   -- ASan's redzones and quarantine inflate it
      assert(per_conn < BUDGET, string.format("%.0f bytes per connection, budget %d", per_conn, BUDGET))
    end
    -- SIGTERM: every connection closes with 1001, then the process exits 0
    p:kill("sigterm")
    local code = p:wait(30)
    local res = { code = code, signal = p.signal, stdout = p:stdout_text(), stderr = p:stderr_text(),
      lines = p.lines, timed_out = code == nil }
    H.assert_exit(res, 0)
    assert.equal(1, #p:grep("^ALL CLOSED$"), p:describe())
    srv:send("COUNT\n")
    srv:wait_line("^COUNT 0 " .. N .. "$", 10)
    assert.equal(N, #srv:grep("^CLOSE %d+ 1001$"))
  end)
end)
