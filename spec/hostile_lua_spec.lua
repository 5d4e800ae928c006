-- Issue 11, the Lua/C boundary: whatever a script hands the C side (tables with hostile
-- metatables, numbers where strings go, finalizers called by hand, misspelt callback
-- names), the host never aborts: an error is raised at the script's line or reported
-- with a traceback, the process goes on (a later timer fires), and nothing is read
-- after it was freed (the ASan build runs this file too: that is where points 5 and 7
-- show). Peers: spec/servers/peer.py (echo, line framing).
local H = require "spec.support.helper"

-- No abort: exit 0, no "PANIC: unprotected error", clean stderr, and the script's last
-- timer printed `alive` (so the loop went on after every hostile call).
local function assert_survived(res, alive)
  H.assert_exit(res, 0)
  assert(not res.stderr:find("PANIC", 1, true), H.describe(res))
  assert(H.count(res.lines, "^" .. alive .. "$") == 1, "no " .. alive .. " line\n" .. H.describe(res))
end

-- The reports `moonwire: error in <what>: <msg>` on stderr, in order, msg up to its end of line.
local function reports(res, what)
  local r = {}
  for msg in res.stderr:gmatch("moonwire: error in " .. what .. ": ([^\n]*)") do
    r[#r + 1] = (msg:gsub("^/[^:]*/script%.lua:", "script.lua:"))
  end
  return r
end

-- Script source from a list of lines, and the line number of the one holding `marker`.
local function lines_of(list) return table.concat(list, "\n") .. "\n" end
local function line_no(list, marker)
  for i, l in ipairs(list) do if l:find(marker, 1, true) then return i end end
  error("no line with " .. marker)
end

describe("hostile Lua values at the Lua/C boundary (issue 11)", function()
  after_each(H.cleanup)

  it("a timer's args table whose __len or __index raises or lies is an error in that timer, reported; the host goes on (point 6)",
    function()
      local src = {
        'local mw = require "moonwire"',
        'local Timer = mw.Timer',
        'local function f(...) print("FIRED", select("#", ...), ...) end',
        'local function mt(m) return setmetatable({ "a", "b" }, m) end',
        'Timer.add(0.01, f, mt { __len = function() error("len raised") end }, false) -- RAISE',
        'Timer.add(0.02, f, mt { __len = function() return 1.5 end }, false)',
        'Timer.add(0.03, f, mt { __len = function() return -3 end }, false)',
        'Timer.add(0.04, f, mt { __len = function() return 1e8 end }, false)',
        'Timer.add(0.05, f, mt { __len = function() return math.maxinteger end }, false)',
        'Timer.add(0.06, f, mt { __len = function() return 3 end, __index = function() error("index raised") end }, false) -- INDEX',
        'Timer.add(0.07, f, mt { __len = function() return 3 end, __index = function(_, i) return "i" .. i end }, false)',
        'local late = { "x" }',
        'Timer.add(0.08, f, late, false)',
        'setmetatable(late, { __len = function() error("late metatable") end }) -- LATE',
        'local n, id = 0, nil',
        'id = Timer.add(0.01, f, mt { __len = function() n = n + 1; if n == 3 then Timer.del(id) end; error("persistent " .. n) end }) -- PERSISTENT',
        'Timer.add(0.09, f, { "plain", 2 }, false)',
        'Timer.add(0.3, function() print("ALIVE") end, false)',
      }
      local res = H.run(lines_of(src))
      assert_survived(res, "ALIVE")
      assert.same({ "FIRED\t0", "FIRED\t3\ta\tb\ti3", "FIRED\t2\tplain\t2", "ALIVE" }, res.lines)
      local at = function(marker, msg) return ("script.lua:%d: %s"):format(line_no(src, marker), msg) end
      local got = reports(res, "timer")
      table.sort(got)
      local want = {
        at("RAISE", "len raised"), "object length is not an integer",
        "too many timer arguments to unpack (#args is 100000000)",
        "too many timer arguments to unpack (#args is " .. math.maxinteger .. ")",
        at("INDEX", "index raised"), at("LATE", "late metatable"),
        at("PERSISTENT", "persistent 1"), at("PERSISTENT", "persistent 2"), at("PERSISTENT", "persistent 3"),
      }
      table.sort(want)
      assert.same(want, got)
      assert.equal(#want, H.count_text(res.stderr, "stack traceback:"), res.stderr)
    end)

  it("numbers as header values go out as written while the collector runs at every allocation (point 5)",
    function()
      local srv = H.server("echo")
      local res = H.run([==[
        local mw = require "moonwire"
        collectgarbage("incremental", 1, 1000, 1)   -- a collection step at nearly every allocation
        local c = mw.AsyncTcpConnection.new("ws://127.0.0.1:" .. arg[1] .. "/")
        local h = { ["X-Int"] = 42, ["X-Text"] = "text" }
        for i = 1, 300 do h[("X-N%03d"):format(i)] = i + 0.5 end
        c.headers = h
        c.onError = function() end     -- the echo peer sends the request back: no 101
        c.onClose = function() print("CLOSED") end
        print("CONNECT", c:connect())
      ]==], { srv.port })
      H.assert_exit(res, 0)
      assert.same({ "CONNECT\ttrue", "CLOSED" }, res.lines)
      srv:wait_line("^LINE %d+ X%-Text: ")
      local got = {}
      for _, l in ipairs(srv.lines) do
        local name, value = l:match("^LINE %d+ (X%-[%w]+): (.-)\\r$")
        if name then got[#got + 1] = name .. "=" .. value end
      end
      local want = { "X-Int=42" }
      for i = 1, 300 do want[#want + 1] = ("X-N%03d=%s"):format(i, tostring(i + 0.5)) end
      want[#want + 1] = "X-Text=text"
      assert.same(want, got)
    end)

  it("context.ssl options that an __index makes afresh at each read are the ones used (point 5)",
    function()
      local srv = H.server("echo")
      local res = H.run([==[
        local mw = require "moonwire"
        local c = mw.AsyncTcpConnection.new("wss://127.0.0.1:" .. arg[1] .. "/")
        local n = 0
        c.context = { ssl = setmetatable({}, { __index = function(_, k)
          if k == "cafile" or k == "capath" or k == "peer_name" or k == "local_cert" or k == "local_pk" then
            collectgarbage("collect")   -- frees whatever the previous read returned, unless kept
            n = n + 1
            return ("/nonexistent/%s/%d/%s"):format(k, n, ("x"):rep(50))
          end
        end }) }
        c.onError = function(_, code, msg) print("ERROR", code, msg) end
        print("CONNECT", c:connect(), n)
      ]==], { srv.port })
      H.assert_exit(res, 0)
      assert.equal("CONNECT\ttrue\t5", res.lines[1])
      assert.matches("cannot load CA certificates from /nonexistent/cafile/1/" .. ("x"):rep(50) .. " %(ssl%.cafile%)",
        res.lines[2])
    end)

  it("a hot reload hands a live connection its TLS options without reading context.ssl outside a protected call (point 6)",
    function()
      local srv = H.server("echo")
      local res = H.run([==[
        local mw = require "moonwire"
        local st = mw.state("s", { gen = 0, late = 0 })
        st.gen = st.gen + 1
        st.armed = false
        local ssl = setmetatable({}, { __index = function(_, k)
          if st.armed then st.late = st.late + 1; error("context.ssl." .. k .. " read after connect()") end
        end })
        local c = mw.AsyncTcpConnection.new(arg[1], { name = "main", ssl = ssl })
        local gen = st.gen
        c.onConnect = function(conn) conn:send("one") end
        c.onMessage = function(conn, data)
          print("MSG", gen, data)
          if gen == 1 then mw.reload() else mw.Worker.stopAll() end
        end
        c:connect()
        st.armed = true      -- from here on a read of context.ssl raises
        if gen == 2 then
          mw.Timer.add(0.05, function() print("LATE READS", st.late); c:send("two") end, false)
        end
      ]==], { "text://127.0.0.1:" .. srv.port })
      H.assert_exit(res, 0)
      assert(not res.stderr:find("PANIC", 1, true), H.describe(res))
      assert.same({ "MSG\t1\tone", "LATE READS\t0", "MSG\t2\ttwo" }, res.lines)
      assert(res.stderr:find("moonwire: reloaded ", 1, true), H.describe(res))
      assert.equal(1, #srv:grep("^CONNECT "))   -- the same connection throughout
    end)

  it("a finalizer called by hand, twice, from inside the object's own callback ends it and leaves it a valid closed object (point 7)",
    function()
      local srv = H.server("echo")
      local res = H.run([==[
        local mw = require "moonwire"
        local c = mw.AsyncTcpConnection.new(arg[1])
        local gc = debug.getmetatable(c).__gc
        c.onConnect = function(conn) conn:send("one") end
        c.onMessage = function(conn, data)
          print("MSG", data)
          gc(conn); gc(conn)
          print("AFTER", conn:getStatus(), conn:send("x"), conn:close(), conn:getRemotePort(),
            tostring(conn):match("^AsyncTcpConnection%(") ~= nil)
        end
        c.onClose = function(conn) print("CLOSE", conn:getStatus()); gc(conn) end
        c:connect()
        local d = mw.AsyncTcpConnection.new(arg[1])
        gc(d); gc(d)
        print("NEVER CONNECTED", d:getStatus(), d:send("queued"))
        print("WRONG ARGS", pcall(gc, {}), pcall(gc, io.stdout), pcall(gc))
        -- the runtime's own finalizer, and a timer's, from inside that timer's function
        local reg = debug.getregistry()
        local rt = reg["moonwire.rt"]
        local fires, id = 0, nil
        id = mw.Timer.add(0.01, function()
          fires = fires + 1
          local rgc = debug.getmetatable(rt).__gc
          rgc(rt); rgc(rt); rgc({}); rgc(io.stdout)
          for _, t in pairs(reg) do
            local u = type(t) == "table" and rawget(t, id)
            if type(u) == "userdata" then
              local tgc = debug.getmetatable(u).__gc
              tgc(u); tgc(u)
            end
          end
          print("TIMER", mw.Timer.del(id), mw.now() > 0)
        end)
        mw.Timer.add(0.3, function()
          print("FIRES", fires)
          print("ALIVE")
        end, false)
      ]==], { "text://127.0.0.1:" .. srv.port })
      assert_survived(res, "ALIVE")
      assert.same({ "NEVER CONNECTED\tINITIAL\ttrue", "WRONG ARGS\ttrue\ttrue\ttrue",
        "MSG\tone", "AFTER\tCLOSED\tfalse\tfalse\tnil\ttrue", "CLOSE\tCLOSED",
        "TIMER\tfalse\ttrue", "FIRES\t1", "ALIVE" },
        { res.lines[1], res.lines[2], H.grep(res.lines, "^MSG")[1], H.grep(res.lines, "^AFTER")[1],
          H.grep(res.lines, "^CLOSE")[1], H.grep(res.lines, "^TIMER")[1], H.grep(res.lines, "^FIRES")[1],
          res.lines[#res.lines] })
      assert.equal(1, H.count(res.lines, "^CLOSE"))
      srv:wait_line("^CLOSE ")
    end)

  it("a field that looks like a callback but is none warns once per name with the nearest callback; other fields are silent (point 13)",
    function()
      local src = {
        'local mw = require "moonwire"',
        'local c = mw.AsyncTcpConnection.new("ws://127.0.0.1:1/")',
        'c.onMesage = function() end -- MESAGE',
        'c.onMesage = function() end',
        'local d = mw.AsyncTcpConnection.new("ws://127.0.0.1:1/", { onConect = print, onClose = print }) -- OPTIONS',
        'd.onMesage = print',
        'c.OnError = print -- CASE',
        'c.onwebsocketclose = print -- LOWER',
        'c.onBufferDrained = print -- DRAINED',
        'c.onTick = 5 -- FAR',
        'c.myState, c.online, c.on, c.onmessage_count, c.once, c.ON = 1, true, "x", 3, 1, 2',
        'c.onMessage = nil; c.onOther = nil',
        'local w = mw.Worker.new()',
        'w.onWorkerStrat = print -- WORKER',
        'w.name, w.onWorkerStart, w.label = "x", print, "y"',
        'print("KEPT", type(c.onMesage), c.onTick, type(d.onConect), type(rawget(w, "onWorkerStrat")), c.online)',
        'mw.Timer.add(0.01, function() c.onCloes = print end, false) -- CALLBACK',
        'mw.Timer.add(0.05, function() print("ALIVE") end, false)',
      }
      local res = H.run(lines_of(src))
      assert_survived(res, "ALIVE")
      assert.same({ "KEPT\tfunction\t5\tfunction\tfunction\ttrue", "ALIVE" }, res.lines)
      local warn = function(marker, msg)
        return ("moonwire: warning: script.lua:%d: %s"):format(line_no(src, marker), msg)
      end
      local got = {}
      for l in res.stderr:gmatch("[^\n]+") do
        if l:find("warning", 1, true) then got[#got + 1] = (l:gsub(" /[^:]*/script%.lua:", " script.lua:")) end
      end
      assert.same({
        warn("MESAGE", "onMesage is not a moonwire callback; did you mean onMessage?"),
        warn("OPTIONS", "onConect is not a moonwire callback; did you mean onConnect?"),
        warn("CASE", "OnError is not a moonwire callback; did you mean onError?"),
        warn("LOWER", "onwebsocketclose is not a moonwire callback; did you mean onWebSocketClose?"),
        warn("DRAINED", "onBufferDrained is not a moonwire callback; did you mean onBufferDrain?"),
        warn("FAR", "onTick is not a moonwire callback (kept as the script's own field)"),
        warn("WORKER", "onWorkerStrat is not a moonwire callback; did you mean onWorkerStart?"),
        warn("CALLBACK", "onCloes is not a moonwire callback; did you mean onClose?"),
      }, got)
    end)

  it("every API entry point fed hostile values (metatables on args, options, headers, ssl, context; odd numbers and strings) raises at the script's line or returns, at the top level and inside a callback; never aborts (property)",
    function()
      local res = H.run([==[
        local mw = require "moonwire"
        local A, Timer, Worker = mw.AsyncTcpConnection, mw.Timer, mw.Worker
        local function boom(what) return function() error("hostile " .. what) end end
        local fresh = 0
        local hostile = {
          setmetatable({}, { __len = boom "__len" }),
          setmetatable({ 1 }, { __len = function() return 2.5 end }),
          setmetatable({ "a" }, { __len = function() return -1 end }),
          setmetatable({}, { __len = function() return math.maxinteger end }),
          setmetatable({}, { __index = boom "__index", __newindex = boom "__newindex" }),
          setmetatable({}, { __index = function(_, k)
            fresh = fresh + 1
            collectgarbage("step")
            return ("fresh %s %d %s"):format(type(k), fresh, ("y"):rep(40))
          end }),
          setmetatable({}, { __pairs = boom "__pairs", __ipairs = boom "__ipairs" }),
          setmetatable({}, { __tostring = boom "__tostring", __name = "Hostile" }),
          setmetatable({}, { __tostring = function() return {} end, __name = {} }),
          setmetatable({}, { __call = boom "__call", __eq = boom "__eq", __lt = boom "__lt",
            __le = boom "__le", __concat = boom "__concat", __close = boom "__close" }),
          setmetatable({}, { __metatable = "locked", __index = function() return 1 end }),
          1.5, -1, 0, math.maxinteger, math.mininteger, 2^63, 1/0, -1/0, 0/0, "", "a\0b",
          ("x"):rep(70000), "h2,,x", true, false, print, coroutine.create(function() end), io.stdout,
          {}, { {} }, { "h2", 5 },
        }
        local N = #hostile + 1      -- and nil
        local url = "ws://127.0.0.1:1/"
        local function f() end
        local OPTS = { "name", "ssl", "headers", "context", "maxSendBufferSize", "maxPackageSize",
          "connectTimeout", "handshakeTimeout", "closeTimeout", "websocketPingInterval",
          "websocketPingTimeout", "websocketType", "websocketOrigin", "websocketClientProtocol",
          "transport", "id", "url", "protocol", "bytesRead", "onConnect", "onMessage", "onError", "onClose",
          "onBufferFull", "onBufferDrain", "onWebSocketConnect", "onWebSocketClose", "onWebSocketPing",
          "onWebSocketPong", "onMesage", "mine" }
        local SSL = { "verify_peer", "verify_peer_name", "allow_self_signed", "cafile", "capath",
          "peer_name", "local_cert", "local_pk", "alpn" }
        local METHODS = { "send", "sendText", "sendBinary", "close", "finish", "reConnect",
          "cancelReconnect", "pauseRecv", "resumeRecv", "getRemoteIp", "getRemotePort",
          "getRemoteAddress", "getLocalIp", "getLocalPort", "isIpV4", "isIpV6", "bufferFull",
          "getSendBufferQueueSize", "getRecvBufferQueueSize", "getStatus", "tlsInfo", "pipe",
          "destroy", "connect" }
        -- connect() then destroy(): the options are read (headers, context.ssl) and no
        -- socket outlives the call
        local function connect(c) local r = c:connect(); c:destroy(); return r end
        local calls = {
          function(v) return A.new(v) end,
          function(v) return A.new(url, v) end,
          function(v) return A.new(v, v) end,
          function(v) local c = A.new(url); c.headers = v; return connect(c) end,
          function(v) local c = A.new(url); c.headers = { ["X-H"] = v }; return connect(c) end,
          function(v) local c = A.new(url); c.headers = { [v] = "x" }; return connect(c) end,
          function(v) local c = A.new(url); c.context = v; return connect(c) end,
          function(v) local c = A.new(url); c.context = { ssl = v }; return connect(c) end,
          function(v) local c = A.new(url, { ssl = v }); c.headers = v; return c:reConnect(0.5), c:destroy() end,
          function(v) local c = A.new(url); c.context = { ssl = { alpn = { "h2", v } } }; return connect(c) end,
          function(v) local c = A.new(url); c[v] = 1; return c[v] end,
          function(v) local c = A.new(url); return c:close(1000, v), c:close(v, "r"), c:send(v, v) end,
          function(v) return Timer.add(v, f) and Timer.del(v) end,
          function(v) return Timer.add(1, v) end,
          function(v) return Timer.add(0.001, f, v, false) end,        -- fires later: reported
          function(v) return Timer.add(0.001, f, v, v) end,
          function(v) return Timer.del(v) end,
          -- (not tail calls: an error raised by a Lua function at level 2 names the line of
          -- a caller that is still on the stack)
          function(v) return (mw.state(v)) end,
          function(v) return (mw.state("k" .. tostring(fresh), v)) end,
          function(v) return mw.now(v), tostring(A.new(url)) end,
          function(v) local w = Worker.new(); w[v] = 1; w.onWorkerStart = v; return w[v] end,
          function(v) local w = Worker.new(); w.onWorkerStop = v; w.onWorkerReload = v; w.onWorkerStrat = v end,
        }
        for _, k in ipairs(OPTS) do
          calls[#calls + 1] = function(v) return connect(A.new(url, { [k] = v })) end
          calls[#calls + 1] = function(v) local c = A.new(url); c[k] = v; return c[k], connect(c) end
        end
        for _, k in ipairs(SSL) do
          calls[#calls + 1] = function(v) local c = A.new(url); c.context = { ssl = { [k] = v } }; return connect(c) end
        end
        for _, m in ipairs(METHODS) do
          calls[#calls + 1] = function(v) local c = A.new(url); return c[m](c, v), c[m](c, v, v), c:destroy() end
          calls[#calls + 1] = function(v) local c = A.new(url); return (c[m](v)) end
        end
        local function matrix(phase)
          local n, raised, bad = 0, 0, 0
          for i = 1, N do
            local v = hostile[i]
            for j, call in ipairs(calls) do
              n = n + 1
              local ok, err = pcall(call, v)
              if not ok then
                raised = raised + 1
                if type(err) ~= "string" or not err:find("script%.lua:%d+: ") then
                  bad = bad + 1
                  print("NO POSITION", phase, i, j, tostring(err))
                end
              end
            end
          end
          print("MATRIX", phase, n, raised > 0, bad)
        end
        matrix("top")
        Timer.add(0.01, function() matrix("callback") end, false)
        -- not caught: reported as an error in the timer, the next one still runs
        Timer.add(0.02, function() local c = A.new(url); c.headers = hostile[1]; c:connect() end, false)
        Timer.add(0.03, function() local c = A.new(url); c.context = { ssl = hostile[5] }; c:connect() end, false)
        Timer.add(0.5, function() print("ALIVE"); Worker.stopAll() end, false)
      ]==], {}, { timeout = 60 })
      assert_survived(res, "ALIVE")
      assert.same({}, H.grep(res.lines, "^NO POSITION"))
      local m = H.grep(res.lines, "^MATRIX")
      assert.equal(2, #m, H.describe(res))
      assert.matches("^MATRIX\ttop\t%d+\ttrue\t0$", m[1])
      assert.matches("^MATRIX\tcallback\t%d+\ttrue\t0$", m[2])
      local timer_errors = reports(res, "timer")
      assert(#timer_errors >= 2, H.describe(res))
    end)
end)
