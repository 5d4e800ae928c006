-- Issue 11, point 11: SIGINT and SIGTERM stop a runaway callback (`while true do end`),
-- which never returns to the loop: as in lua(1), the signal handler sets a hook that
-- raises "interrupted" in the running Lua code once it has run on for half a second
-- after the signal (a callback that returns sooner just finishes); the error is reported like any callback
-- error and the graceful shutdown then proceeds. The same for the script's top level
-- (exit 1, as any top-level error) and a reload's run of the script. A second signal
-- during a slow graceful shutdown exits at once.
local H = require "spec.support.helper"
local W = require "spec.support.ws_raw"

local function has(text, needle)
  return text:find(needle, 1, true) ~= nil
end

local line_of = H.line_of

-- The interruption of the runaway loop (the line marked `-- runaway` in src) is
-- reported once, like any error of `what` (nil: the top level), with a traceback.
local function assert_interrupted(p, what, src)
  local err = p:stderr_text()
  local want = ("moonwire: %s%s/script.lua:%d: interrupted\nstack traceback:\n"):format(
    what and ("error in " .. what .. ": ") or "", H.tmpdir(), line_of(src, "-- runaway"))
  assert.is_true(has(err, want), "missing " .. want .. "\n" .. p:describe())
  assert.equal(1, H.count_text(err, "interrupted"), p:describe())
  H.assert_clean({ stderr = err, stdout = "", code = 0 })
end

local RUNAWAY_MSG = [==[
local mw = require "moonwire"
local c = mw.AsyncTcpConnection.new(arg[1])
c.onConnect = function(conn) conn:send("hello") end
c.onMessage = function(conn, data)
  print("RUNAWAY", data)
  local n = 0
  while true do n = n + 1 end -- runaway
end
c.onClose = function(conn) print("CLOSED") end
c:connect()
]==]

describe("a runaway callback (issue 11 point 11)", function()
  after_each(H.cleanup)

  for _, sig in ipairs { "sigint", "sigterm" } do
    it("in onMessage is interrupted by " .. sig:upper() .. ", reported, and the graceful stop closes the connection (exit 0)", function()
      local srv = H.server("echo")
      local p = H.start(RUNAWAY_MSG, { "text://127.0.0.1:" .. srv.port })
      p:wait_line("^RUNAWAY\thello$", 10)
      p:kill(sig)
      local code, signal = p:wait(5)
      assert.equal(0, code, p:describe())
      assert.equal(0, signal, p:describe())
      H.assert_clean({ stderr = p:stderr_text(), stdout = "", code = code })
      assert_interrupted(p, "onMessage", RUNAWAY_MSG)
      assert.same({ "CLOSED" }, p:grep("^CLOSED"))
      srv:wait_line("^CLOSE 1 6$", 5)   -- "hello\n"
    end)
  end

  it("in a timer is interrupted by SIGTERM; the WebSocket is then closed with 1001", function()
    local srv = W.peer {}
    local src = [==[
      local mw = require "moonwire"
      local c = mw.AsyncTcpConnection.new(arg[1])
      c.onWebSocketConnect = function(conn)
        mw.Timer.add(0.01, function()
          print("RUNAWAY")
          while true do end -- runaway
        end, nil, false)
      end
      c.onClose = function() print("CLOSED") end
      c:connect()
    ]==]
    local p = H.start(src, { srv.url })
    p:wait_line("^RUNAWAY$", 10)
    p:kill("sigterm")
    local code = p:wait(5)
    assert.equal(0, code, p:describe())
    assert_interrupted(p, "timer", src)
    assert.same({ "CLOSED" }, p:grep("^CLOSED"))
    srv:wait_line("^WSCLOSE 1 1001 going away$", 5)
  end)

  it("at the top level is interrupted by SIGINT: reported as a top-level error, exit 1", function()
    local src = [==[
      local mw = require "moonwire"
      mw.Timer.add(0.05, function() print("LOOP RAN") end, nil, false)
      print("RUNAWAY")
      local n = 0
      while true do n = n + 1 end -- runaway
    ]==]
    local p = H.start(src)
    p:wait_line("^RUNAWAY$", 10)
    p:kill("sigint")
    local code, signal = p:wait(5)
    assert.equal(1, code, p:describe())
    assert.equal(0, signal, p:describe())
    assert_interrupted(p, nil, src)
    assert.is_true(has(p:stderr_text(), "in main chunk"), p:describe())
    assert.same({}, p:grep("^LOOP RAN"))
  end)

  -- -e chunks are the host's own, as the script is: the same door, the same report.
  it("in an -e chunk is interrupted by SIGTERM: reported as a top-level error, exit 1; later chunks do not run", function()
    local p = H.start(nil, nil, { argv = {
      "-e", 'require "moonwire"; print("RUNAWAY"); io.stdout:flush(); while true do end',
      "-e", 'print("NEXT RAN")' } })
    p:wait_line("^RUNAWAY$", 10)
    p:kill("sigterm")
    local code, signal = p:wait(5)
    assert.equal(1, code, p:describe())
    assert.equal(0, signal, p:describe())
    local err = p:stderr_text()
    assert.is_true(has(err, "moonwire: (command line):1: interrupted\nstack traceback:\n"), p:describe())
    assert.is_true(has(err, "in main chunk"), p:describe())
    assert.equal(1, H.count_text(err, "interrupted"), p:describe())
    assert.same({}, p:grep("^NEXT RAN"))
  end)

  it("in a reload's run of the script is interrupted by SIGINT: the reload fails, the graceful stop follows", function()
    local srv = H.server("echo")
    local src = [==[
      local mw = require "moonwire"
      local s = mw.state("runs", { n = 0 })
      s.n = s.n + 1
      local c = mw.AsyncTcpConnection.new(arg[1])
      c.onConnect = function(conn) print("CONNECTED") end
      c.onClose = function() print("CLOSED") end
      c:connect()
      if s.n == 2 then
        print("RUNAWAY")
        while true do end -- runaway
      end
    ]==]
    local p = H.start(src, { "text://127.0.0.1:" .. srv.port })
    p:wait_line("^CONNECTED$", 10)
    p:kill("sighup")
    p:wait_line("^RUNAWAY$", 10)
    p:kill("sigint")
    local code = p:wait(5)
    assert.equal(0, code, p:describe())
    assert_interrupted(p, "reload", src)
    assert.is_true(has(p:stderr_text(), "reload of "), p:describe())
    assert.same({ "CLOSED" }, p:grep("^CLOSED"))
    srv:wait_line("^CLOSE 1 0$", 5)
  end)

  it("a callback busy when SIGTERM comes that returns within the grace time is not interrupted", function()
    local p = H.start([==[
      local mw = require "moonwire"
      mw.Timer.add(0.01, function()
        print("BUSY")
        local t = mw.now()
        while mw.now() - t < 0.2 do end
        print("DONE")
      end, nil, false)
      mw.Timer.add(0.05, function() end)   -- keeps the loop alive
    ]==])
    p:wait_line("^BUSY$", 10)
    p:kill("sigterm")
    local code = p:wait(5)
    assert.equal(0, code, p:describe())
    assert.same({ "BUSY", "DONE" }, p.lines)
    assert.equal("", p:stderr_text())
  end)

  it("a top level busy when SIGTERM comes that ends within the grace time runs on; the loop then stops gracefully", function()
    local srv = H.server("echo")
    local p = H.start([==[
      local mw = require "moonwire"
      local c = mw.AsyncTcpConnection.new(arg[1])
      c.onConnect = function() print("CONNECTED") end
      c.onClose = function() print("CLOSED") end
      c:connect()
      print("BUSY")
      local t = mw.now()
      while mw.now() - t < 0.2 do end
      print("DONE")
    ]==], { "text://127.0.0.1:" .. srv.port })
    p:wait_line("^BUSY$", 10)
    p:kill("sigterm")
    local code = p:wait(5)
    assert.equal(0, code, p:describe())
    assert.same({ "BUSY", "DONE" }, H.grep(p.lines, "^[BD]"))
    assert.equal("", p:stderr_text())
  end)

  it("a second SIGINT while the first has not reached the loop (the callback catches the interruption) ends the process by the signal", function()
    local p = H.start([==[
      local mw = require "moonwire"
      mw.Timer.add(0.01, function()
        while true do
          local ok, err = pcall(function() print("RUNAWAY"); while true do end end)
          print("CAUGHT", err)
        end
      end, nil, false)
    ]==])
    p:wait_line("^RUNAWAY$", 10)
    p:kill("sigint")
    p:wait_line("^CAUGHT\t.*interrupted$", 5)
    p:kill("sigint")
    local code, signal = p:wait(5)
    assert.equal(2, signal, p:describe())   -- SIGINT's default action
    assert.is_not_nil(code, p:describe())
  end)

  it("a second SIGINT during a slow graceful shutdown (the server never answers the close) exits at once", function()
    local srv = W.peer { "--close-reply", "never", "--keep-tcp" }
    local p = H.start([==[
      local mw = require "moonwire"
      local c = mw.AsyncTcpConnection.new(arg[1])
      c.onWebSocketConnect = function() print("READY") end
      c.onClose = function() print("CLOSED") end
      c:connect()
    ]==], { srv.url })
    p:wait_line("^READY$", 10)
    p:kill("sigint")
    srv:wait_line("^WSCLOSE 1 1001 going away$", 5)  -- the graceful stop is under way
    local t0 = H.now()
    p:kill("sigint")
    local code, signal = p:wait(5)
    assert.equal(0, code, p:describe())
    assert.equal(0, signal, p:describe())
    local took = p.ended - t0
    assert.is_true(took < 1 * H.slow, "exited " .. took .. " s after the second SIGINT (the stop waits 3 s)")
  end)
end)
