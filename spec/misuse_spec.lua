-- Issue 6, "Script misuse": whatever a script does with connections, timers, callbacks
-- and coroutines, the result is a clear error or a defined behaviour, never a crash.
-- Each case checks the exit code, the script's own lines, the error text with its
-- traceback on stderr, and that no sanitizer reported anything.
local H = require "spec.support.helper"

local function start_ws()
  local p = H.spawn({ H.python, "-u", H.src .. "/spec/servers/ws_py_peer.py" }, { name = "ws peer" })
  local _, port = p:wait_line("^PORT (%d+)$", 10)
  p.port = tonumber(port)
  p.url = "ws://127.0.0.1:" .. port .. "/echo"
  return p
end

local count = H.count_text

-- stderr holds `moonwire: error in <what>: <msg...>` followed by a traceback.
local function assert_reported(res, what, msg)
  local head = "moonwire: error in " .. what .. ": "
  local s = res.stderr:find(head, 1, true)
  assert(s, "no report of an error in " .. what .. "\n" .. H.describe(res))
  local tail = res.stderr:sub(s)
  assert(tail:find(msg, 1, true), "the report of " .. what .. " lacks " .. msg .. "\n" .. H.describe(res))
  assert(tail:find("\nstack traceback:\n", 1, true), "no traceback after " .. what .. "\n" .. H.describe(res))
end

-- Waits until the process's stderr contains `needle` (plain text).
local function wait_stderr(p, needle, timeout)
  local ok = H.run_until(function() return p:stderr_text():find(needle, 1, true) ~= nil end,
    (timeout or 10) * H.slow)
  assert(ok, "stderr never showed " .. needle .. "\n" .. p:describe())
end

describe("script misuse (issue 6)", function()
  after_each(H.cleanup)

  it("send, close, finish, destroy and queries on a never-connected connection: defined results; it then connects",
    function()
      local srv = start_ws()
      local res = H.run([==[
        local mw = require "moonwire"
        local c = mw.AsyncTcpConnection.new(arg[1])
        print("SEND", c:send("queued before connect"))       -- queued, sent after the 101
        print("CLOSE", c:close(), c:getStatus())
        print("FINISH", c:finish(), c:getStatus())
        c:destroy(); c:destroy(); c:cancelReconnect(); c:pauseRecv(); c:resumeRecv()
        print("QUERIES", c:getRemoteIp(), c:getLocalPort(), c:bufferFull(), c:isIpV4(),
          c:getSendBufferQueueSize())                         -- the queued frame: 21 + 6 bytes
        c.onWebSocketConnect = function(conn) print("OPEN") end
        c.onMessage = function(conn, data) print("ECHO", data); conn:close() end
        c.onClose = function(conn) print("CLOSED", conn:getStatus()) end
        print("CONNECT", c:connect())
        -- reConnect on a connection never connected: connects after the delay
        local d = mw.AsyncTcpConnection.new(arg[1])
        d.onWebSocketConnect = function(conn) print("D OPEN"); conn:close() end
        d.onClose = function() print("D CLOSED") end
        print("D RECONNECT", d:reConnect(0.01), d:getStatus())
      ]==], { srv.url })
      H.assert_exit(res, 0)
      assert.same({ "SEND\ttrue", "CLOSE\tfalse\tINITIAL", "FINISH\tfalse\tINITIAL",
        "QUERIES\tnil\tnil\tfalse\tfalse\t27", "CONNECT\ttrue", "D RECONNECT\ttrue\tINITIAL" },
        { table.unpack(res.lines, 1, 6) })
      local seq = {}
      for _, l in ipairs(res.lines) do
        if l == "OPEN" or l:find("^ECHO") or l:find("^CLOSED") then seq[#seq + 1] = l end
      end
      assert.same({ "OPEN", "ECHO\tqueued before connect", "CLOSED\tCLOSED" }, seq)
      assert.same({ "D OPEN", "D CLOSED" }, H.grep(res.lines, "^D [OC]"))
    end)

  it("send, close, finish, destroy on a closed connection return false; reConnect opens a new lifetime",
    function()
      local srv = start_ws()
      local res = H.run([==[
        local mw = require "moonwire"
        local c = mw.AsyncTcpConnection.new(arg[1])
        local lifetimes, closes = 0, 0
        c.onWebSocketConnect = function(conn)
          lifetimes = lifetimes + 1
          print("OPEN", lifetimes)
          conn:close()
        end
        c.onClose = function(conn)
          closes = closes + 1
          print("CLOSED", closes, conn:getStatus(), conn:send("x"), conn:sendText("x"),
            conn:close(), conn:finish(), conn:close(1000, "again"))
          conn:destroy(); conn:destroy()
          if closes == 1 then print("RECONNECT", conn:reConnect(0.01)) end
          if closes == 2 then
            mw.Timer.add(0.01, function()
              print("LATER", c:getStatus(), c:send("x"), c:close(), c:connect() and "reconnecting" or "no")
              c.onWebSocketConnect = function(conn) print("THIRD"); conn:destroy() end
              c.onClose = function() print("THIRD CLOSED") end
            end, false)
          end
        end
        c:connect()
      ]==], { srv.url })
      H.assert_exit(res, 0)
      assert.same({ "OPEN\t1", "CLOSED\t1\tCLOSED\tfalse\tfalse\tfalse\tfalse\tfalse", "RECONNECT\ttrue",
        "OPEN\t2", "CLOSED\t2\tCLOSED\tfalse\tfalse\tfalse\tfalse\tfalse",
        "LATER\tCLOSED\tfalse\tfalse\treconnecting", "THIRD", "THIRD CLOSED" }, res.lines)
      srv:wait_line("^CONNECT ")
      srv:wait_line("^CONNECT ")
      srv:wait_line("^CONNECT ")
    end)

  it("connect() twice, or on an open connection, returns false: one handshake, one onWebSocketConnect",
    function()
      local srv = start_ws()
      local res = H.run([==[
        local mw = require "moonwire"
        local c = mw.AsyncTcpConnection.new(arg[1])
        local opens = 0
        c.onWebSocketConnect = function(conn)
          opens = opens + 1
          print("OPEN", opens, conn:connect(), conn:getStatus())
          conn:close()
        end
        c.onClose = function(conn) print("CLOSED", opens) end
        print("FIRST", c:connect())
        print("SECOND", c:connect(), c:getStatus())
      ]==], { srv.url })
      H.assert_exit(res, 0)
      assert.same({ "FIRST\ttrue", "SECOND\tfalse\tCONNECTING", "OPEN\t1\tfalse\tESTABLISHED",
        "CLOSED\t1" }, res.lines)
      srv:wait_line("^CLOSE 1000")
      assert.equal(1, #srv:grep("^CONNECT "))
    end)

  it("reConnect while connecting ends that attempt (onClose) and starts one new one; the last call wins",
    function()
      local srv = start_ws()
      local res = H.run([==[
        local mw = require "moonwire"
        -- a: reConnect right after connect (DNS/TCP under way)
        local a = mw.AsyncTcpConnection.new(arg[1])
        local a_closes, a_opens = 0, 0
        a.onWebSocketConnect = function(conn) a_opens = a_opens + 1; print("A OPEN", a_opens); conn:close() end
        a.onClose = function() a_closes = a_closes + 1; print("A CLOSED", a_closes, a_opens) end
        a.onError = function(_, code, msg) print("A ERROR", code, msg) end
        a:connect()
        print("A RECONNECT", a:reConnect(30), a:getStatus())
        print("A AGAIN", a:reConnect(0.01))          -- replaces the 30 s one
        -- b: reConnect from onConnect, with TCP up and the 101 not yet read
        local b = mw.AsyncTcpConnection.new(arg[1])
        local b_tcp, b_closes = 0, 0
        b.onConnect = function(conn)
          b_tcp = b_tcp + 1
          if b_tcp == 1 then print("B RECONNECT", conn:reConnect(0), conn:getStatus()) end
        end
        b.onWebSocketConnect = function(conn) print("B OPEN", b_tcp); conn:close() end
        b.onClose = function() b_closes = b_closes + 1; print("B CLOSED", b_closes) end
        b:connect()
      ]==], { srv.url }, { timeout = 20 })
      H.assert_exit(res, 0)
      assert.same({ "A RECONNECT\ttrue\tCLOSED", "A AGAIN\ttrue", "A CLOSED\t1\t0", "A OPEN\t1",
        "A CLOSED\t2\t1" }, H.grep(res.lines, "^A "))
      assert.same({ "B RECONNECT\ttrue\tCLOSED", "B CLOSED\t1", "B OPEN\t2", "B CLOSED\t2" },
        H.grep(res.lines, "^B "))
      assert(res.elapsed < 10 * H.slow, "the replaced 30 s reconnect still ran")
    end)

  it("a callback may replace or remove itself (and other callbacks) while it runs", function()
    local srv = start_ws()
    local res = H.run([==[
      local mw = require "moonwire"
      local c = mw.AsyncTcpConnection.new(arg[1])
      local third = false
      c.onWebSocketConnect = function(conn)
        print("OPEN A")
        conn.onWebSocketConnect = function(conn)
          print("OPEN B")
          conn.onWebSocketConnect = nil          -- removes itself
          conn:send("3")
        end
        conn:send("1")
      end
      c.onMessage = function(conn, d)
        print("V1", d)
        conn.onMessage = function(conn, d)
          print("V2", d)
          conn.onMessage = function(conn, d) print("V3", d); conn:close() end
          conn:reConnect(0)
        end
        conn:send("2")
      end
      c.onClose = function(conn)
        print("CLOSE X")
        conn.onClose = function(conn)
          print("CLOSE Y")
          if not third then
            third = true
            -- a third lifetime: onWebSocketConnect is gone, onConnect closes at once
            conn.onConnect = function(conn) print("TCP 3"); conn:close() end
            conn:reConnect(0)
          end
        end
      end
      c:connect()
    ]==], { srv.url })
    H.assert_exit(res, 0)
    assert.same({ "OPEN A", "V1\t1", "V2\t2", "CLOSE X", "OPEN B", "V3\t3", "CLOSE Y", "TCP 3",
      "CLOSE Y" }, res.lines)
  end)

  it("errors raised in onError and onClose are reported with a traceback; onClose runs once; the host goes on",
    function()
      local srv = start_ws()
      local res = H.run([==[
        local mw = require "moonwire"
        local r = mw.AsyncTcpConnection.new("ws://127.0.0.1:1/")   -- refused
        local errors, closes = 0, 0
        r.onError = function(conn, code, msg)
          errors = errors + 1
          print("ONERROR", code, errors)
          error("boom in onError")
        end
        r.onClose = function(conn)
          closes = closes + 1
          print("ONCLOSE", closes, conn:getStatus())
          -- an error object whose __tostring itself fails
          error(setmetatable({}, { __tostring = function() error("boom in __tostring") end }))
        end
        r:connect()
        -- afterwards, another connection works normally
        mw.Timer.add(0.05, function()
          local c = mw.AsyncTcpConnection.new(arg[1])
          c.onWebSocketConnect = function(conn) conn:send("still working") end
          c.onMessage = function(conn, data) print("ECHO", data); conn:close() end
          c.onClose = function() print("SECOND CLOSED", closes, errors) end
          c:connect()
        end, false)
      ]==], { srv.url })
      H.assert_exit(res, 0)
      assert.same({ "ONERROR\t1\t1", "ONCLOSE\t1\tCLOSED", "ECHO\tstill working",
        "SECOND CLOSED\t1\t1" }, res.lines)
      assert_reported(res, "onError", "script.lua:7: boom in onError")
      assert_reported(res, "onClose", "boom in __tostring")
    end)

  it("a yield across a callback boundary is reported and the host goes on; coroutines inside callbacks work",
    function()
      local srv = start_ws()
      local p = H.start([==[
        local mw = require "moonwire"
        local c = mw.AsyncTcpConnection.new(arg[1])
        local sender
        c.onWebSocketConnect = function(conn)
          print("OPEN")
          -- a coroutine that sends what it is resumed with
          sender = coroutine.wrap(function()
            while true do print("SENT FROM COROUTINE", conn:send(coroutine.yield())) end
          end)
          sender()
          mw.Timer.add(0.01, function() sender("one") end, false)
          print("PCALL YIELD", pcall(coroutine.yield, 1))
          coroutine.yield("across the callback")   -- raises: reported, not fatal
          print("NOT REACHED")
        end
        -- a callback that is itself a coroutine: each event resumes it; it dies after "two"
        c.onMessage = coroutine.wrap(function(conn, data)
          print("CO MSG", data)
          conn:send("two")
          conn, data = coroutine.yield()
          print("CO MSG", data)
          conn:send("three")                       -- the echo finds the coroutine dead
        end)
        mw.Timer.add(0.001, function() coroutine.yield() end, false)  -- a timer that yields
        c:connect()
      ]==], { srv.url })
      wait_stderr(p, "cannot resume dead coroutine")
      wait_stderr(p, "error in timer")
      assert(p:alive(), p:describe())
      p:kill("sigterm")                              -- graceful stop: close 1001, exit 0
      local code = p:wait(10)
      local res = { code = code, signal = p.signal, stdout = p:stdout_text(), stderr = p:stderr_text(),
        lines = p.lines, timed_out = code == nil }
      H.assert_exit(res, 0)
      assert.same({ "OPEN", "PCALL YIELD\tfalse\tattempt to yield from outside a coroutine",
        "SENT FROM COROUTINE\ttrue", "CO MSG\tone", "CO MSG\ttwo" }, res.lines)
      assert_reported(res, "onWebSocketConnect", "attempt to yield from outside a coroutine")
      assert_reported(res, "timer", "attempt to yield from outside a coroutine")
      assert_reported(res, "onMessage", "cannot resume dead coroutine")
      srv:wait_line("^CLOSE 1001")
    end)

  it("requiring moonwire inside a coroutine that then ends: callbacks still run on the main thread",
    function()
      local srv = start_ws()
      local res = H.run([==[
        local mw
        coroutine.wrap(function() mw = require "moonwire" end)()
        collectgarbage("collect"); collectgarbage("collect")   -- the coroutine is gone
        local c = mw.AsyncTcpConnection.new(arg[1])
        c.onWebSocketConnect = function(conn) print("OPEN", coroutine.isyieldable()); conn:send("hi") end
        c.onMessage = function(conn, m) collectgarbage("collect"); print("ECHO", m); conn:close() end
        c.onClose = function() print("CLOSED") end
        c:connect()
        mw.Timer.add(0.01, function() collectgarbage("collect"); print("TIMER") end, false)
      ]==], { srv.url })
      H.assert_exit(res, 0)
      table.sort(res.lines)
      assert.same({ "CLOSED", "ECHO\thi", "OPEN\tfalse", "TIMER" }, res.lines)
    end)

  it("100,000 timers: added, fired or deleted, three rounds in bounded time and memory", function()
    local res = H.run(H.MEM_LUA .. [==[
      local mw = require "moonwire"
      local Timer, N = mw.Timer, 100000
      local t0, fired, rounds, rss = mw.now(), 0, 0, {}
      local function round()
        rounds = rounds + 1
        -- twice: a timer is a userdata with __gc, freed only by the cycle after the one
        -- that finalizes it (one collect left 40 MB of finalized timers, or not, by timing)
        collectgarbage("collect")
        collectgarbage("collect")
        rss[rounds] = mem("VmRSS")
        if rounds > 3 then
          print("DONE", fired, string.format("%.2f", mw.now() - t0), rss[2], rss[4],
            math.floor(collectgarbage("count")))
          return
        end
        fired = 0
        for i = 1, N do
          Timer.add(0.001 * (i % 10), function(k)
            assert(k == i)
            fired = fired + 1
            if fired == N then
              local ids = {}
              for j = 1, N do ids[j] = Timer.add(10, function() error("a deleted timer fired") end) end
              local deleted = 0
              for j = 1, N do if Timer.del(ids[j]) then deleted = deleted + 1 end end
              print("ROUND", rounds, fired, deleted, Timer.del(ids[1]))
              Timer.add(0.001, round, false)
            end
          end, { i }, false)
        end
      end
      round()
    ]==], {}, { timeout = 60 })
    H.assert_exit(res, 0)
    assert.same({ "ROUND\t1\t100000\t100000\tfalse", "ROUND\t2\t100000\t100000\tfalse",
      "ROUND\t3\t100000\t100000\tfalse" }, H.grep(res.lines, "^ROUND"))
    local done = H.grep(res.lines, "^DONE")[1]
    assert(done, H.describe(res))
    local secs, rss2, rss4, lua_kib = done:match("^DONE\t100000\t([%d.]+)\t(%d+)\t(%d+)\t(%d+)$")
    assert(secs, done)
    print(string.format("\n  100k timers x3: %.2f s, VmRSS after round 1 %d KiB, after round 3 %d KiB, Lua heap %d KiB",
      tonumber(secs), rss2, rss4, lua_kib))
    assert(tonumber(secs) < 15 * H.slow, "too slow: " .. secs .. " s")
    assert(tonumber(lua_kib) < 64 * 1024, "Lua heap " .. lua_kib .. " KiB after the rounds")
    if not H.sanitized and not H.valgrind then   -- ASan's quarantine holds freed memory
      assert(tonumber(rss4) - tonumber(rss2) < 16 * 1024,
        "memory grew from " .. rss2 .. " to " .. rss4 .. " KiB over two more rounds")
    end
    assert.equal(0, count(res.stderr, "a deleted timer fired"))
  end)

  it("a callback that recurses until the Lua stack or the C stack overflows is reported; the connection goes on",
    function()
      local srv = start_ws()
      local res = H.run([==[
        local mw = require "moonwire"
        local c = mw.AsyncTcpConnection.new(arg[1])
        local function rec(n) return rec(n + 1) + 1 end
        c.onWebSocketConnect = function(conn) conn:send("deep") end
        c.onMessage = function(conn, data)
          print("MSG", data, conn:getStatus())
          if data == "deep" then
            conn:send("deeper")
            rec(1)                                    -- Lua stack overflow
          elseif data == "deeper" then
            conn:send("last")
            local t = setmetatable({}, { __index = function(t, k) return t[k] end })
            return t.x                                -- C stack overflow (metamethod chain)
          else
            conn:close()
          end
        end
        c.onClose = function() print("CLOSED") end
        c:connect()
      ]==], { srv.url }, { timeout = 30 })
      H.assert_exit(res, 0)
      assert.same({ "MSG\tdeep\tESTABLISHED", "MSG\tdeeper\tESTABLISHED", "MSG\tlast\tESTABLISHED",
        "CLOSED" }, res.lines)
      assert_reported(res, "onMessage", "stack overflow")
      assert_reported(res, "onMessage", "C stack overflow")
      assert.equal(2, count(res.stderr, "stack traceback:"), res.stderr)
      assert(#res.stderr < 20000, "a traceback of the whole overflowed stack was printed")
    end)

  it("a script that drops every reference to its connections: they keep working until closed, then are collected",
    function()
      local srv = start_ws()
      local res = H.run([==[
        local mw = require "moonwire"
        local weak = setmetatable({}, { __mode = "k" })
        local N, closed, echoed = 50, 0, 0
        local function open(i)
          local c = mw.AsyncTcpConnection.new(arg[1])
          local n = 0
          c.onWebSocketConnect = function(conn) collectgarbage("collect"); conn:send(i .. ":1") end
          c.onMessage = function(conn, data)
            collectgarbage("collect")
            n = n + 1
            if data == i .. ":" .. n then echoed = echoed + 1 end
            if n < 3 then conn:send(i .. ":" .. (n + 1)) else conn:close() end
          end
          c.onClose = function()
            closed = closed + 1
            if closed == N then
              mw.Timer.add(0.01, function()
                collectgarbage("collect"); collectgarbage("collect")
                local left = 0
                for _ in pairs(weak) do left = left + 1 end
                print("DONE", echoed, closed, left)
              end, false)
            end
          end
          c:connect()
          weak[c] = true
        end
        for i = 1, N do open(i) end
        collectgarbage("collect")
      ]==], { srv.url }, { timeout = 30 })
      H.assert_exit(res, 0)
      assert.same({ "DONE\t150\t50\t0" }, res.lines)
      for _ = 1, 50 do srv:wait_line("^CLOSE 1000") end
    end)

  it("wrong argument types and wrong selves raise clear errors naming the function and argument", function()
    local res = H.run([==[
      local mw = require "moonwire"
      local A, Timer = mw.AsyncTcpConnection, mw.Timer
      local c = A.new("ws://127.0.0.1:1/")
      local cases = {
        { function() c:send({}) end, "bad argument #1 to 'send' (string expected, got table)" },
        { function() c:send() end, "bad argument #1 to 'send' (string expected, got no value)" },
        { function() c:sendBinary(print) end, "bad argument #1 to 'sendBinary' (string expected, got function)" },
        { function() c:close(1000, {}) end, "bad argument #2 to 'close' (string expected, got table)" },
        { function() c:reConnect(-1) end, "bad argument #1 to 'reConnect' (delay must be >= 0)" },
        { function() c:reConnect("soon") end, "bad argument #1 to 'reConnect' (number expected, got string)" },
        { function() Timer.add("x", print) end, "bad argument #1 to 'add' (number expected, got string)" },
        { function() Timer.add(1, "x") end, "bad argument #2 to 'add' (function expected, got string)" },
        { function() Timer.add(-1, print) end, "bad argument #1 to 'add' (interval must be a number >= 0)" },
        { function() Timer.add(0, print) end, "a persistent timer needs an interval > 0" },
        { function() Timer.add(1, print, 5) end, "bad argument #3 to 'add'" },
        { function() Timer.del("x") end, "bad argument #1 to 'del' (number expected, got string)" },
        { function() Timer:add(1, print) end, "calling 'add' on bad self (number expected, got table)" },
        { function() A.new({}) end, "bad argument #1 to 'new' (string expected, got table)" },
        { function() A.new("ws://") end, "missing host" },
        { function() A.new("gopher://x/") end, "unsupported scheme" },
        { function() A.new("ws://x:1/", 5) end, "bad argument #2 to 'new' (table expected, got number)" },
        { function() c.maxSendBufferSize = "big" end, "number expected, got string" },
        { function() c.maxPackageSize = 0 end, "maxPackageSize must be >= 1" },
        { function() c.connectTimeout = -1 end, "connectTimeout must be a number >= 0" },
        { function() c.closeTimeout = -0.5 end, "closeTimeout must be a number >= 0" },
        { function() c.closeTimeout = "soon" end, "number expected, got string" },
        { function() c.onMessage = 5 end, "onMessage must be a function or nil, got number" },
        { function() c.websocketType = 5 end, "websocketType must be" },
        { function() c.transport = "udp" end, "unknown transport" },
        { function() c.id = 5 end, "id is read-only" },
        { function() c.headers = 5; c:connect() end, "headers must be a table" },
        { function() c.headers = { X = {} }; c:connect() end, "headers must map string names to string values" },
        { function() local t = { send = c.send }; t:send("x") end,
          "calling 'send' on bad self (moonwire.AsyncTcpConnection expected, got table)" },
        { function() c.getStatus(io.stdout) end,
          "bad argument #1 to 'getStatus' (moonwire.AsyncTcpConnection expected, got FILE*)" },
        { function() c.connect() end, "bad argument #1 to 'connect' (moonwire.AsyncTcpConnection expected, got no value)" },
        { function() return setmetatable({}, getmetatable(c)) end, "bad argument #2 to 'setmetatable'" },
      }
      for i, case in ipairs(cases) do
        local ok, err = pcall(case[1])
        if ok then print("NO ERROR", i)
        elseif not tostring(err):find(case[2], 1, true) then print("WRONG", i, err)
        elseif not tostring(err):find("script%.lua:%d+: ") then print("NO POSITION", i, err)
        else print("OK", i) end
      end
      print("METATABLE", getmetatable(c))
      -- the same misuse inside a callback is reported with a traceback; the host goes on
      local t = mw.Timer.add(0.01, function() c:send({}) end, false)
      mw.Timer.add(0.05, function() print("ALIVE", c:getStatus()) end, false)
    ]==])
    H.assert_exit(res, 0)
    local want = {}
    for i = 1, 32 do want[i] = "OK\t" .. i end
    want[#want + 1] = "METATABLE\tAsyncTcpConnection"
    want[#want + 1] = "ALIVE\tINITIAL"
    assert.same(want, res.lines)
    assert_reported(res, "timer", "bad argument #1 to 'send' (string expected, got table)")
  end)

  it("a callback field set to a value that is neither a function nor nil raises, at the script's line; nil and functions still work",
    function()
      local srv = start_ws()
      local script = [==[
        local mw = require "moonwire"
        local A = mw.AsyncTcpConnection
        local names = { "onConnect", "onWebSocketConnect", "onMessage", "onError", "onClose",
          "onBufferFull", "onBufferDrain", "onWebSocketClose", "onWebSocketPing", "onWebSocketPong" }
        local bad = { { 5, "number" }, { "print", "string" }, { {}, "table" }, { true, "boolean" },
          { false, "boolean" }, { io.stdout, "FILE*" },
          { setmetatable({}, { __call = function() end }), "table" } }   -- callable, not a function
        local c = A.new(arg[1])
        local n, wrong = 0, 0
        for _, name in ipairs(names) do
          for _, v in ipairs(bad) do
            n = n + 1
            local line
            local ok, err = pcall(function() line = debug.getinfo(1, "l").currentline; c[name] = v[1] end)
            local want = ("script.lua:%d: %s must be a function or nil, got %s"):format(line, name, v[2])
            if ok or err:sub(-#want) ~= want then wrong = wrong + 1; print("WRONG", name, v[2], err) end
            if rawequal(c[name], v[1]) then wrong = wrong + 1; print("STORED", name, v[2]) end
          end
        end
        print("CHECKED", n, wrong)
        -- through the options of new(), which go through __newindex: the line of the call
        local ok, err = pcall(function()
          return A.new(arg[1], { onMessage = 5 })   -- NEW-LINE
        end)
        print(ok, (err:gsub("^.*/", "")))
        -- a name that is not a callback keeps any value as the script's own data
        c.onSomethingElse = 5
        c.on = "x"
        print("OWN", c.onSomethingElse, c.on)
        -- nil and functions are fine, and a new function replaces the old (as a hot reload does)
        c.onMessage = function() print("OLD HANDLER") end
        c.onMessage = nil
        c.onMessage = function(conn, data) print("ECHO", data); conn:close() end
        c.onWebSocketConnect = function(conn)
          conn:send("still working")
          conn.onClose = 42   -- CALLBACK-LINE: reported with a traceback, the host goes on
        end
        c.onClose = nil
        c:connect()
        mw.Timer.add(0.01, function()
          A.new(arg[1], { onError = "not a function" })   -- TIMER-LINE
        end, false)
      ]==]
      local function line_of(marker)
        local i = 0
        for l in (script .. "\n"):gmatch("([^\n]*)\n") do
          i = i + 1
          if l:find(marker, 1, true) then return i end
        end
        error("no " .. marker)
      end
      local res = H.run(script, { srv.url })
      H.assert_exit(res, 0)
      assert.same({ "CHECKED\t70\t0",
        "false\tscript.lua:" .. line_of("NEW-LINE") .. ": onMessage must be a function or nil, got number",
        "OWN\t5\tx", "ECHO\tstill working" }, res.lines)
      assert_reported(res, "onWebSocketConnect",
        "script.lua:" .. line_of("CALLBACK-LINE") .. ": onClose must be a function or nil, got number")
      assert_reported(res, "timer",
        "script.lua:" .. line_of("TIMER-LINE") .. ": onError must be a function or nil, got string")
      assert.equal(2, count(res.stderr, "stack traceback:"), res.stderr)
    end)

  it("a callback field set to a non-function at the top level stops the script with the error and its line; exit 1",
    function()
      local res = H.run([==[
        local mw = require "moonwire"
        local c = mw.AsyncTcpConnection.new("ws://127.0.0.1:1/")
        c.onMessage = function() end
        print("BEFORE")
        c.onMessage = 5
        print("NOT REACHED")
      ]==])
      assert.equal(1, res.code, H.describe(res))
      H.assert_clean(res)
      assert.same({ "BEFORE" }, res.lines)
      assert(res.stderr:find("script.lua:5: onMessage must be a function or nil, got number", 1, true),
        H.describe(res))
    end)

  it("finalizers that reach a collected connection or the shut-down runtime get errors, not a crash",
    function()
      local res = H.run([==[
        -- made before moonwire: finalized after the runtime at exit
        local early = setmetatable({}, { __gc = function()
          local mw = require "moonwire"
          print("AT EXIT timer", pcall(mw.Timer.add, 1, print))
          print("AT EXIT del", pcall(mw.Timer.del, 1))
          print("AT EXIT new", pcall(mw.AsyncTcpConnection.new, "ws://127.0.0.1:1/"))
        end })
        local mw = require "moonwire"
        -- a finalizer that resurrects a connection collected in the same cycle
        local holder = setmetatable({}, { __gc = function(t)
          print("RESURRECTED", pcall(function() return t.conn:getStatus() end))
          print("RESURRECTED", pcall(function() return t.conn:send("x") end))
        end })
        holder.conn = mw.AsyncTcpConnection.new("ws://127.0.0.1:1/")
        holder = nil
        collectgarbage("collect"); collectgarbage("collect")
        print("MAIN DONE")
      ]==])
      H.assert_exit(res, 0)
      assert.equal("MAIN DONE", res.lines[3])
      assert.matches("^RESURRECTED\tfalse\t.*script%.lua:%d+: AsyncTcpConnection used after it was garbage%-collected$",
        res.lines[1])
      assert.matches("^RESURRECTED\tfalse\t.*garbage%-collected$", res.lines[2])
      assert.same({ "AT EXIT timer\ttrue\tfalse", "AT EXIT del\ttrue\tfalse" }, { res.lines[4], res.lines[5] })
      assert.matches("^AT EXIT new\tfalse\t.*moonwire has shut down", res.lines[6])
    end)
end)
