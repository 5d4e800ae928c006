-- Issue 17 part 4: worker.count = N forks N worker processes once the script has
-- loaded; the parent supervises them: a crash or a non-zero exit is restarted with a
-- backoff, SIGTERM stops every worker gracefully, SIGHUP reloads each one keeping its
-- connections, and the exit status says whether any worker failed. Each test runs the
-- real binary against spec/servers/ws_counter.py, which counts connections and messages.
local H = require "spec.support.helper"
local R = require "spec.support.reload"
local uv = require "luv"

local ws_counter, start = R.ws_counter, R.start

local function esc(s) return (s:gsub("%p", "%%%0")) end

local function seen(p, pattern, n)
  n = n or 1
  if not H.run_until(function() return #p:grep(pattern) >= n end, 10 * H.slow) then
    error(("fewer than %d lines matching %q from %s"):format(n, pattern, p:describe()), 2)
  end
end

local function seen_err(p, pattern, n)
  n = n or 1
  if not H.run_until(function() return R.count_err(p, pattern) >= n end, 10 * H.slow) then
    error(("fewer than %d stderr matches of %q from %s"):format(n, pattern, p:describe()), 2)
  end
end

-- The pid of the process, read by the script (Lua has no getpid).
local PID = [[
local function pid()
  local f = io.open("/proc/self/stat"); local s = f:read("l"); f:close()
  return tonumber(s:match("^(%d+)"))
end
]]

-- Two workers, each with one connection to <url>/<path>/w<id>. onMessage checks that the
-- numbered stream has no gap and no repeat (the count lives in mw.state, so it survives
-- reloads) and prints "<V> <id> end <n> last <last>" at the stream's end.
local function counting_bot(v, url)
  return ([[
local mw = require "moonwire"
local V, URL = %q, %q
local st = mw.state("stream", {})
local w = mw.Worker.new()
w.count = 2
w.onWorkerStart = function(w)
  local c = mw.AsyncTcpConnection.new(URL .. "/w" .. w.id, { name = "feed" })
  c.onMessage = function(c, data)
    local n = tonumber(data:match("^%%d+ (%%d+)$"))
    if n then
      if n ~= (st.last or 0) + 1 then print("GAP " .. w.id .. " " .. tostring(st.last) .. " " .. n) end
      st.last = n
      if n %% 50 == 0 then print(V .. " " .. w.id .. " at " .. n) end
      return
    end
    local e = data:match("^END (%%d+)$")
    if e then print(V .. " " .. w.id .. " end " .. e .. " last " .. tostring(st.last)) end
  end
  c:connect()
end
w.onWorkerReload = function(w) print(V .. " reloaded " .. w.id .. " " .. mw.workerId()) end
w.onWorkerStop = function(w) print("stop " .. w.id) end
mw.Worker.runAll()
]]):format(v, url)
end

-- Two workers, each with one connection to <url>/echo/w<id>; prints "up <id> <pid>" and
-- "got <id> <message>".
local function echo_bot(url, extra)
  return PID .. ([[
local mw = require "moonwire"
local w = mw.Worker.new()
w.count = 2
w.onWorkerStart = function(w)
  %s
  local c = mw.AsyncTcpConnection.new(%q .. "/echo/w" .. w.id)
  c.onWebSocketConnect = function() print("up " .. w.id .. " " .. pid()) end
  c.onMessage = function(_, data) print("got " .. w.id .. " " .. data) end
  c:connect()
end
w.onWorkerStop = function(w) print("stop " .. w.id) end
mw.Worker.runAll()
]]):format(extra or "", url)
end

-- The server's connection id of the path, from its CONNECT lines (the last one).
local function conn_id(srv, path)
  local id
  for _, l in ipairs(srv:grep("^CONNECT %d+ " .. esc(path) .. "$")) do id = l:match("^CONNECT (%d+)") end
  return id
end

describe("worker.count (issue 17 part 4)", function()
  after_each(H.cleanup)

  it("two workers keep their connections across a SIGHUP reload: no message lost or doubled", function()
    local srv = ws_counter()
    local URL = srv.url .. "/count/200/100000"
    local p = start(counting_bot("v1", URL))
    seen(p, "^v1 0 at %d+$")
    seen(p, "^v1 1 at %d+$")
    seen(srv, "^CONNECT %d /count/200/100000/w0$")
    seen(srv, "^CONNECT %d /count/200/100000/w1$")
    R.replace(p.path, counting_bot("v2", URL))
    p:kill("sighup") -- to the parent, which passes it on to each worker
    seen_err(p, "moonwire: reloaded [^\n]+\n", 2)
    seen(p, "^v2 reloaded 0 0$")
    seen(p, "^v2 reloaded 1 1$")
    -- the stream goes on on the same sockets, handled by the new code
    seen(p, "^v2 0 at %d+$")
    seen(p, "^v2 1 at %d+$")
    srv:send("STOP *\n")
    seen(p, "^v2 0 end %d+ last %d+$")
    seen(p, "^v2 1 end %d+ last %d+$")
    for id = 0, 1 do
      local e, last = p:grep("^v2 " .. id .. " end")[1]:match("end (%d+) last (%d+)")
      assert.are.equal(e, last, p:describe())
      assert.is_true(tonumber(e) >= 100)
    end
    assert.are.same({}, p:grep("^GAP"))
    assert.are.equal(2, #srv:grep("^CONNECT "), srv:describe())
    assert.are.same({}, srv:grep("^CLOSE "))
    R.stop(p)
    assert.are.same({ "stop 0" }, p:grep("^stop 0$"))
    assert.are.same({ "stop 1" }, p:grep("^stop 1$"))
  end)

  it("kill -9 of one worker: it is restarted, the other keeps its connection", function()
    local srv = ws_counter()
    local p = start(echo_bot(srv.url))
    seen(p, "^up 0 %d+$")
    seen(p, "^up 1 %d+$")
    local pid1 = tonumber(p:grep("^up 1 ")[1]:match("(%d+)$"))
    local id0 = conn_id(srv, "/echo/w0")
    uv.kill(pid1, "sigkill")
    seen_err(p, "moonwire: worker 1 %(pid " .. pid1 .. "%) killed by signal 9; restarting in 0%.1s\n")
    seen(p, "^up 1 %d+$", 2)
    local pid1b = tonumber(p:grep("^up 1 ")[2]:match("(%d+)$"))
    assert.are_not.equal(pid1, pid1b)
    -- worker 0: one start, its first connection still open and answering
    assert.are.equal(1, #p:grep("^up 0 "))
    srv:send("SEND " .. id0 .. " still-here\n")
    seen(p, "^got 0 still%-here$")
    assert.are.equal(1, #srv:grep("^CONNECT %d+ /echo/w0$"), srv:describe())
    assert.are.equal(2, #srv:grep("^CONNECT %d+ /echo/w1$"), srv:describe())
    assert.are.same({}, srv:grep("^CLOSE " .. id0 .. " "))
    -- a worker failed: the program's status says so, after a graceful stop
    p:kill("sigterm")
    assert.are.equal(1, p:wait(20), p:describe())
  end)

  it("a worker restarted after a reload runs the reloaded script, not the one loaded at start", function()
    local srv = ws_counter()
    local URL = srv.url .. "/count/200/100000"
    local p = start(PID .. counting_bot("v1", URL) .. [[
print("pid " .. mw.workerId() .. " " .. pid())
]])
    seen(p, "^v1 0 at %d+$")
    seen(p, "^v1 1 at %d+$")
    R.replace(p.path, PID .. counting_bot("v2", URL) .. [[
w.onWorkerStart = (function(start) return function(w) print("v2 start " .. w.id .. " " .. pid()); start(w) end end)(w.onWorkerStart)
]])
    p:kill("sighup")
    seen(p, "^v2 reloaded 0 0$")
    seen(p, "^v2 reloaded 1 1$")
    -- the top level ran before the fork: its line names worker 0 with the parent's pid,
    -- so worker 1's pid comes from its start under v2 (a reload runs onWorkerStart)
    local pid1 = tonumber(p:grep("^v2 start 1 ")[1]:match("(%d+)$"))
    uv.kill(pid1, "sigkill")
    seen_err(p, "moonwire: worker 1 %(pid " .. pid1 .. "%) killed by signal 9; restarting in 0%.1s\n")
    -- the new worker 1 starts from the parent's copy (v1), then reloads to v2
    seen(p, "^v2 reloaded 1 1$", 2)
    seen(p, "^v2 start 1 %d+$", 2)
    seen(srv, "^CONNECT 3 /count/200/100000/w1$")
    seen(p, "^v2 1 at %d+$")
    assert.are.equal(1, #srv:grep("^CONNECT %d+ /count/200/100000/w0$"))
    assert.are.same({}, p:grep("^GAP"))
    p:kill("sigterm")
    assert.are.equal(1, p:wait(20), p:describe())
  end)

  it("SIGTERM stops every worker gracefully: onWorkerStop once each, close 1001, exit 0", function()
    local srv = ws_counter()
    local p = start(echo_bot(srv.url))
    seen(p, "^up 0 ")
    seen(p, "^up 1 ")
    p:kill("sigterm")
    local code = p:wait(20)
    assert.are.equal(0, code, p:describe())
    assert.are.same({ "stop 0" }, p:grep("^stop 0$"))
    assert.are.same({ "stop 1" }, p:grep("^stop 1$"))
    srv:wait_line("^CLOSE %d+ 1001 ")
    H.run_until(function() return #srv:grep("^CLOSE ") >= 2 end, 5 * H.slow)
    assert.are.equal(2, #srv:grep("^CLOSE %d+ 1001 "), srv:describe())
    assert.are.equal("", p:stderr_text())
  end)

  it("a worker exiting non-zero is restarted with a growing backoff; the exit status is 1", function()
    local srv = ws_counter()
    local marks = H.tmpdir() .. "/fails"
    -- worker 1 exits with 3 on its first two starts, then stays up
    local extra = ([[
  if w.id == 1 then
    local f = io.open(%q, "a+"); local n = #f:read("a"); f:write("x"); f:close()
    if n < 2 then os.exit(3) end
  end]]):format(marks)
    local p = start(echo_bot(srv.url, extra))
    seen_err(p, "moonwire: worker 1 %(pid %d+%) exited with status 3; restarting in 0%.1s\n")
    seen_err(p, "moonwire: worker 1 %(pid %d+%) exited with status 3; restarting in 0%.2s\n")
    seen(p, "^up 1 ")
    seen(p, "^up 0 ")
    assert.are.equal(1, #p:grep("^up 0 "))
    p:kill("sigterm")
    assert.are.equal(1, p:wait(20), p:describe())
    assert.are.equal(1, #p:grep("^stop 0$"))
    assert.are.equal(1, #p:grep("^stop 1$"))
  end)

  it("--watch: each worker watches the script and reloads on a save, keeping its connection", function()
    local srv = ws_counter()
    local URL = srv.url .. "/count/200/100000"
    local path = H.write_script(counting_bot("v1", URL), "bot.lua")
    local p = H.start(nil, {}, { path = path, options = { "--watch" } })
    p.path = path
    seen(p, "^v1 0 at %d+$")
    seen(p, "^v1 1 at %d+$")
    R.replace(p.path, counting_bot("v2", URL))
    seen_err(p, "moonwire: reloaded [^\n]+\n", 2)
    seen(p, "^v2 reloaded 0 0$")
    seen(p, "^v2 reloaded 1 1$")
    seen(p, "^v2 0 at %d+$")
    seen(p, "^v2 1 at %d+$")
    assert.are.same({}, p:grep("^GAP"))
    assert.are.equal(2, #srv:grep("^CONNECT "), srv:describe())
    R.stop(p)
  end)

  it("examples/workers.lua: two workers, each its own connection and id", function()
    local srv = ws_counter()
    local res = H.run(nil, { srv.url .. "/echo" }, { path = H.src .. "/examples/workers.lua" })
    H.assert_exit(res, 0)
    table.sort(res.lines)
    assert.are.same({ "worker 0 got: hello from worker 0", "worker 0 stopped",
      "worker 1 got: hello from worker 1", "worker 1 stopped" }, res.lines)
  end)

  it("workers that all end by themselves end the program with 0, each id 0..N-1 once", function()
    local res = H.run([[
local mw = require "moonwire"
local w = mw.Worker.new()
w.count = 3
w.onWorkerStart = function(w) print("start " .. w.id .. " " .. mw.workerId()) end
mw.Worker.runAll()
]])
    H.assert_exit(res, 0)
    table.sort(res.lines)
    assert.are.same({ "start 0 0", "start 1 1", "start 2 2" }, res.lines)
  end)

  it("a bad count, or a connection opened at the top level, is an error before any fork", function()
    local res = H.run([[
local mw = require "moonwire"
local w = mw.Worker.new()
w.count = 0
mw.Worker.runAll()
]])
    H.assert_exit(res, 1)
    assert.matches("worker%.count must be a positive integer, got 0", res.stderr)
    local srv = ws_counter()
    res = H.run(([[
local mw = require "moonwire"
mw.AsyncTcpConnection.new(%q):connect()
local w = mw.Worker.new()
w.count = 2
w.onWorkerStart = function() print("started") end
mw.Worker.runAll()
]]):format(srv.url .. "/echo"))
    H.assert_exit(res, 1)
    assert.matches("worker%.count = 2: the script's top level connected ws://[^\n]+; connect in onWorkerStart",
      res.stderr)
    assert.are.same({}, res.lines)
  end)
end)
