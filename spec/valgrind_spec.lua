-- Issue 2, item 10 (second half): valgrind --leak-check=full finds no definite leak and no
-- memory error while moonwire runs scripts that exercise every part of the host. (The first
-- half, ASan+UBSan, is the build-asan run of the whole suite by scripts/test.sh.)
-- valgrind cannot run an ASan binary, so in that configuration this file is pending.
-- MOONWIRE_VALGRIND=1 runs every other spec's scripts under valgrind too (slow).
local H = require "spec.support.helper"

local function vg(script, args, opts)
  opts = opts or {}
  opts.valgrind = true
  opts.timeout = opts.timeout or 120
  return H.run(script, args, opts)
end

-- valgrind --quiet prints nothing unless it found something: every "==pid==" line is a
-- finding. Exit 99 is --error-exitcode.
local function assert_valgrind_clean(res, code)
  local findings = {}
  for line in res.stderr:gmatch("[^\n]+") do
    if line:find("^==%d+==") then findings[#findings + 1] = line end
  end
  if #findings > 0 then
    error("valgrind reports:\n" .. table.concat(findings, "\n", 1, math.min(#findings, 80)), 2)
  end
  if res.timed_out or res.code ~= code or res.signal ~= 0 then
    error(string.format("expected exit code %d under valgrind\n%s", code, H.describe(res)), 2)
  end
end

local run_valgrind = not H.sanitized

describe("valgrind (issue 2 item 10)", function()
  after_each(H.cleanup)

  if not run_valgrind then
    it("runs only in the build without sanitizers", function()
      pending("valgrind cannot run an ASan binary; scripts/test.sh runs this spec in build/")
    end)
    return
  end

  it("is installed", function()
    assert.is_true(os.execute("valgrind --version >/dev/null 2>&1") == true)
  end)

  it("examples/tcp_echo.lua", function()
    local srv = H.server("echo")
    local res = vg(nil, { "text://127.0.0.1:" .. srv.port, "a", "b" },
      { path = H.src .. "/examples/tcp_echo.lua" })
    assert_valgrind_clean(res, 0)
    assert.same({ "< a", "< b" }, H.grep(res.lines, "^< "))
  end)

  it("text:// burst, frame:// dribble, a 1 MiB frame and a maxPackageSize overflow", function()
    local burst = H.server("burst", { "--framing", "line", "--count", 1000 })
    local dribble = H.server("dribble", { "--framing", "frame" })
    local frames = H.server("frame")
    local huge = H.server("huge", { "--framing", "line", "--limit", 8 * 1024 * 1024 })
    local res = vg([==[
      local mw = require "moonwire"
      local function conn(url, setup)
        local c = mw.AsyncTcpConnection.new(url)
        c.onError = function(_, code) print("ERROR", url:match("^%a+"), code) end
        setup(c)
        c:connect()
      end
      local lines = 0
      conn(arg[1], function(c)
        c.onMessage = function(cn) lines = lines + 1; if lines == 1000 then print("BURST"); cn:close() end end
      end)
      conn(arg[2], function(c)
        local got = 0
        c.onConnect = function(cn) cn:send("ab"); cn:send("") end
        c.onMessage = function(cn) got = got + 1; if got == 2 then print("DRIBBLE"); cn:close() end end
      end)
      conn(arg[3], function(c)
        local big = string.rep("0123456789abcdef", 65536)
        c.onConnect = function(cn) cn:send(big) end
        c.onMessage = function(cn, d) print("BIG", d == big); cn:close() end
      end)
      conn(arg[4], function(c) c.maxPackageSize = 65536 end)
    ]==], { "text://127.0.0.1:" .. burst.port, "frame://127.0.0.1:" .. dribble.port,
            "frame://127.0.0.1:" .. frames.port, "text://127.0.0.1:" .. huge.port })
    assert_valgrind_clean(res, 0)
    table.sort(res.lines)
    assert.same({ "BIG\ttrue", "BURST", "DRIBBLE", "ERROR\ttext\t7" }, res.lines)
  end)

  it("timers: persistent with args, del from inside, one-shot, delAll", function()
    local res = vg([==[
      local T = require("moonwire").Timer
      local n, id = 0, nil
      id = T.add(0.01, function(a) n = n + 1; if n == 3 then T.del(id); print("DEL", a) end end, { "x" })
      T.add(0.02, function() print("ONCE") end, nil, false)
      T.add(0.01, function() end)
      T.add(0.2, function() T.delAll(); print("ALL") end, nil, false)
    ]==])
    assert_valgrind_clean(res, 0)
    assert.same({ "ONCE", "DEL\tx", "ALL" }, res.lines)
  end)

  it("refused with reConnect and cancelReconnect; DNS failure; localhost; connectTimeout", function()
    local dns = H.dns_server()
    local srv = H.server("echo")
    local hole = H.server("blackhole")
    local res = vg([==[
      local mw = require "moonwire"
      local r = mw.AsyncTcpConnection.new("tcp://127.0.0.1:1")
      local closes = 0
      r.onClose = function(c)
        closes = closes + 1
        if closes < 3 then c:reConnect(0.05) else c:reConnect(5); c:cancelReconnect(); print("REFUSED", closes) end
      end
      r:connect()
      local d = mw.AsyncTcpConnection.new("tcp://nosuch.invalid:80")
      d.onError = function(_, code) print("DNS", code) end
      d:connect()
      local l = mw.AsyncTcpConnection.new(arg[1])
      l.onConnect = function(c) c:send("hi") end
      l.onMessage = function(c, data) print("LOCALHOST", data); c:close() end
      l:connect()
      local t = mw.AsyncTcpConnection.new(arg[2])
      t.connectTimeout = 0.3
      t.onError = function(_, code) print("TIMEOUT", code) end
      t:connect()
    ]==], { "text://localhost:" .. srv.port, "tcp://127.0.0.1:" .. hole.port }, { env = dns.env })
    assert_valgrind_clean(res, 0)
    table.sort(res.lines)
    assert.same({ "DNS\t3", "LOCALHOST\thi", "REFUSED\t3", "TIMEOUT\t1" }, res.lines)
  end)

  it("errors in callbacks, with tracebacks", function()
    local res = vg([==[
      local mw = require "moonwire"
      mw.Timer.add(0.01, function() error("boom") end, nil, false)
      mw.Timer.add(0.02, function() error({}) end, nil, false)
      local r = mw.AsyncTcpConnection.new("tcp://127.0.0.1:1")
      r.onError = function() local x = nil; return x.y end
      r:connect()
      mw.Timer.add(0.1, function() print("ALIVE") end, nil, false)
    ]==])
    assert_valgrind_clean(res, 0)
    assert.same({ "ALIVE" }, res.lines)
    assert.is_true(res.stderr:find("stack traceback:", 1, true) ~= nil)
  end)

  it("a syntax error, a runtime error in the main chunk, --check, -e, --version", function()
    assert_valgrind_clean(vg("local = 1\n", {}, { raw = true }), 1)
    assert_valgrind_clean(vg("local t = nil\nprint(t.x)\n", {}, { raw = true }), 1)
    local good = H.write_script("print('x')\n", "good.lua", true)
    assert_valgrind_clean(vg(nil, nil, { argv = { "--check", good } }), 0)
    local res = vg(nil, nil, { argv = { "-e", "print('E')" } })
    assert_valgrind_clean(res, 0)
    assert.same({ "E" }, res.lines)
    assert_valgrind_clean(vg(nil, nil, { argv = { "--version" } }), 0)
    assert_valgrind_clean(vg(nil, nil, { argv = { "--help" } }), 0)
  end)

  it("SIGTERM with an open connection", function()
    local srv = H.server("echo")
    local p = H.start([==[
      local mw = require "moonwire"
      local c = mw.AsyncTcpConnection.new(arg[1])
      c.onConnect = function(conn) conn:send("up") end
      c.onMessage = function() print("READY") end
      mw.Timer.add(0.05, function() end)
      c:connect()
    ]==], { "text://127.0.0.1:" .. srv.port }, { valgrind = true })
    p:wait_line("^READY$", 60)
    p:kill("sigterm")
    local code, signal = p:wait(60)
    assert_valgrind_clean({ stderr = p:stderr_text(), stdout = p:stdout_text(), code = code,
      signal = signal, timed_out = code == nil }, 0)
  end)

  it("unreferenced connections and calls on closed connections", function()
    local echo = H.server("echo")
    local res = vg([==[
      local mw = require "moonwire"
      local closed = 0
      for i = 1, 30 do
        local c = mw.AsyncTcpConnection.new(arg[1])
        c.onConnect = function(conn) conn:send("n" .. i) end
        c.onMessage = function(conn) conn:close() end
        c.onClose = function(conn)
          closed = closed + 1
          conn:send("x"); conn:close(); conn:destroy(); conn:pauseRecv(); conn:getRemoteIp()
          if closed == 30 then collectgarbage(); collectgarbage(); print("GC DONE") end
        end
        c:connect()
      end
    ]==], { "text://127.0.0.1:" .. echo.port })
    assert_valgrind_clean(res, 0)
    assert.same({ "GC DONE" }, res.lines)
  end)

  it("wss:// with a cafile: a reconnect that resumes the session, a hot reload that keeps the connection, a close", function()
    local T = require "spec.support.tls"
    local srv = T.server("ws")
    local res = vg([==[
      local mw = require "moonwire"
      local st = mw.state("s", { n = 0 })
      local c = mw.AsyncTcpConnection.new(arg[1], { name = "w", ssl = { cafile = arg[2] } })
      c.onWebSocketConnect = function(conn)
        print("WSCONNECT resumed=" .. tostring(conn:tlsInfo().resumed))
        conn:send("hello")
      end
      c.onMessage = function(conn, data)
        st.n = st.n + 1
        print("MSG " .. st.n)
        if st.n == 1 then conn:reConnect(0)     -- a second handshake, resuming the session
        elseif st.n == 2 then mw.reload()       -- the declaration is matched to the live one
        else conn:close() end
      end
      c.onClose = function() print("CLOSE") end
      c:connect()
      local w = mw.Worker.new()
      w.onWorkerReload = function() c:send("again") end
      mw.Worker.runAll()
    ]==], { "wss://localhost:" .. srv.port .. "/", T.certs() .. "/ca.pem" })
    assert_valgrind_clean(res, 0)
    assert.same({ "WSCONNECT resumed=false", "MSG 1", "CLOSE", "WSCONNECT resumed=true", "MSG 2", "MSG 3",
                  "CLOSE" }, res.lines)
    assert.matches("moonwire: reloaded ", res.stderr)
  end)

  it("issue 14: a SOCKS5 tunnel, an HTTP proxy's 502, a reconnect policy that gives up, a redirect", function()
    local pport = H.peer("ws_py_peer.py").port
    local bad = H.peer("proxy_fault.py", { "http-status", "502", "Bad Gateway" }).port
    local flap = H.peer("flap.py", { "redirect:302:http://127.0.0.1:" .. pport .. "/echo" }).port
    local T = require "spec.support.tls"
    local sport = T.free_port()
    H.spawn({ "microsocks", "-i", "127.0.0.1", "-p", tostring(sport) }, { name = "microsocks" })
    assert(T.wait_port(sport, 10))
    local res = vg([==[
      local mw = require "moonwire"
      local target, bad, socks, flap = arg[1], arg[2], arg[3], arg[4]
      local function conn(url, opts, tag)
        local c = mw.AsyncTcpConnection.new(url, opts)
        c.onWebSocketConnect = function(c) c:send(tag) end
        c.onMessage = function(c, m) print("MSG " .. m) c:close() end
        c.onError = function(c, code, msg) print("ERR " .. tag .. " " .. code) end
        c.onReconnect = function(c, n) print("RECONNECT " .. tag .. " " .. n) end
        c:connect()
      end
      conn(target, { proxySocks5 = "127.0.0.1:" .. socks }, "socks")
      conn(target, { proxyHttp = "127.0.0.1:" .. bad }, "502")
      conn("ws://127.0.0.1:1/", { reconnect = { min = 0.05, attempts = 2, jitter = 0 } }, "retry")
      conn("ws://127.0.0.1:" .. flap .. "/", { followRedirects = 1 }, "redirect")
    ]==], { "ws://127.0.0.1:" .. pport .. "/echo", bad, sport, flap }, { env = { http_proxy = false, all_proxy = false } })
    assert_valgrind_clean(res, 0)
    table.sort(res.lines)
    assert.same({ "ERR 502 1", "ERR retry 1", "ERR retry 1", "ERR retry 1", "ERR retry 1", "MSG redirect", "MSG socks",
                  "RECONNECT retry 1", "RECONNECT retry 2" }, res.lines)
  end)

  it("backpressure: fill to onBufferFull against a server that does not read, then drain", function()
    local sink = H.server("sink")
    local p = H.start([==[
      local mw = require "moonwire"
      local s = mw.AsyncTcpConnection.new(arg[1])
      s.maxSendBufferSize = 256 * 1024
      local chunk, full, stuck, tid = string.rep("z", 65536), false, 0, nil
      s.onBufferFull = function() full = true end
      s.onBufferDrain = function(conn)
        full = false
        if not tid then print("DRAINED"); conn:close() end
      end
      s.onConnect = function(conn)
        tid = mw.Timer.add(0.01, function()
          for _ = 1, 8 do if not full then conn:send(chunk) end end
          stuck = full and stuck + 1 or 0
          if stuck == 20 then mw.Timer.del(tid); tid = nil; print("STUCK") end
        end)
      end
      s:connect()
    ]==], { "tcp://127.0.0.1:" .. sink.port }, { valgrind = true })
    p:wait_line("^STUCK$", 120)
    sink:send("READ\n")
    p:wait_line("^DRAINED$", 60)
    local code, signal = p:wait(60)
    assert_valgrind_clean({ stderr = p:stderr_text(), stdout = p:stdout_text(), code = code,
      signal = signal, timed_out = code == nil }, 0)
  end)

  it("a console: attach evaluates, prints, fails, detaches, and a second one stops the bot", function()
    local sock = H.tmpdir() .. "/vg-console.sock"
    local p = H.start([==[
      local mw = require "moonwire"
      print("CONSOLE " .. assert(mw.console(arg[1])))
      mw.Timer.add(0.05, function() end)
    ]==], { sock }, { valgrind = true })
    p:wait_line("^CONSOLE ", 120)
    local a = H.spawn({ H.bin, "attach", sock }, { name = "moonwire attach" })
    a:send("x = 20\nprint(x + 1)\nerror('no')\nfunction f()\nreturn x end\nf()\nstring.rep('y', 100000):len()\n")
    a:close_stdin()
    assert.equal(0, a:wait(60), a:describe())
    assert.same({ "21", "console:1: no" }, { a.lines[1], a.lines[2] })
    local b = H.spawn({ H.bin, "attach", sock }, { name = "moonwire attach" })
    b:send("mw.Worker.stopAll()\n")
    b:close_stdin()
    b:wait(60)
    local code, signal = p:wait(60)
    assert_valgrind_clean({ stderr = p:stderr_text(), stdout = p:stdout_text(), code = code,
      signal = signal, timed_out = code == nil }, 0)
  end)

  it("issue 17: examples/workers.lua, two worker processes (valgrind follows the forks)", function()
    local R = require "spec.support.reload"
    local srv = R.ws_counter()
    local res = vg(nil, { srv.url .. "/echo" }, { path = H.src .. "/examples/workers.lua" })
    assert_valgrind_clean(res, 0)
    table.sort(res.lines)
    assert.same({ "worker 0 got: hello from worker 0", "worker 0 stopped",
      "worker 1 got: hello from worker 1", "worker 1 stopped" }, res.lines)
  end)
end)
