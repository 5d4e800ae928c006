-- Issue 2, item 8: SIGINT and SIGTERM end the process gracefully with exit 0 (closing its
-- connections); SIGPIPE never kills it.
local H = require "spec.support.helper"

local BUSY = [==[
local mw = require "moonwire"
local c = mw.AsyncTcpConnection.new(arg[1])
c.onConnect = function(conn) conn:send("hello") end
c.onMessage = function(conn, data) print("READY", data) end
c.onClose = function(conn) print("CLOSED", conn:getStatus()) end
c.onError = function(_, code, msg) print("ERROR", code, msg) end
mw.Timer.add(0.05, function() end)            -- would keep the loop alive forever
c:connect()
]==]

describe("signals (issue 2 item 8)", function()
  after_each(H.cleanup)

  for _, sig in ipairs { "sigterm", "sigint" } do
    it(sig:upper() .. " closes the connections and exits 0", function()
      local srv = H.server("echo")
      local p = H.start(BUSY, { "text://127.0.0.1:" .. srv.port })
      p:wait_line("^READY\thello$", 10)
      srv:wait_line("^CONNECT 1$")
      p:kill(sig)
      local code, signal = p:wait(10)
      assert.equal(0, code, p:describe())
      assert.equal(0, signal, p:describe())
      H.assert_clean({ stderr = p:stderr_text(), stdout = "", code = code })
      assert.same({ "CLOSED\tCLOSED" }, p:grep("^CLOSED"))
      srv:wait_line("^CLOSE 1 6$", 5)
    end)
  end

  it("SIGTERM with Worker: onWorkerStop runs, exit 0", function()
    local p = H.start([==[
      local mw = require "moonwire"
      local w = mw.Worker.new()
      w.onWorkerStart = function()
        mw.Timer.add(0.05, function() end)
        print("STARTED")
      end
      w.onWorkerStop = function() print("STOPPED") end
      mw.Worker.runAll()
    ]==])
    p:wait_line("^STARTED$", 10)
    p:kill("sigterm")
    local code, signal = p:wait(10)
    assert.equal(0, code, p:describe())
    assert.equal(0, signal)
    assert.same({ "STARTED", "STOPPED" }, p.lines)
  end)

  it("a SIGTERM while the process ends by itself (teardown) still exits 0", function()
    -- The script has nothing left to do and ends; its finalizer, run after the loop closed,
    -- waits for a file so the signal lands in teardown for sure. libev restores the default
    -- action when its watchers stop: the signal killed the process there (a supervisor
    -- stopping a bot that had just finished: exit by signal 15 instead of 0).
    local go = os.tmpname()
    os.remove(go)
    local p = H.start([==[
      local late = setmetatable({}, { __gc = function()
        print("TEARDOWN")
        local t = os.time()
        while not io.open(arg[1], "r") and os.time() - t < 20 do end
        print("DONE")
      end })
      local mw = require "moonwire"
      mw.Timer.add(0.01, function() print("FIRED") end, nil, false)
    ]==], { go })
    p:wait_line("^TEARDOWN$", 10)
    p:kill("sigterm")
    assert(io.open(go, "w")):close()
    local code, signal = p:wait(30)
    os.remove(go)
    assert.equal(0, code, p:describe())
    assert.equal(0, signal, p:describe())
    assert.same({ "FIRED", "TEARDOWN", "DONE" }, p.lines)
  end)

  it("writing to a connection the peer has reset does not raise SIGPIPE", function()
    -- The server resets the connection after the first line. The client stopped reading,
    -- so it only learns of the reset from its writes: EPIPE, never a SIGPIPE death.
    local srv = H.server("rst")
    local res = H.run([==[
      local mw = require "moonwire"
      local c = mw.AsyncTcpConnection.new(arg[1])
      local sends, tid = 0, nil
      c.onConnect = function(conn)
        conn:pauseRecv()
        conn:send("hello")
        tid = mw.Timer.add(0.01, function()
          sends = sends + 1
          conn:send(string.rep("y", 4096))
          if sends == 200 then print("GAVE UP"); mw.Timer.del(tid); conn:close() end
        end)
      end
      c.onError = function(_, code, msg) print("ERROR", code) end
      c.onClose = function()
        print("CLOSED")
        if tid then mw.Timer.del(tid) end
      end
      c:connect()
    ]==], { "text://127.0.0.1:" .. srv.port }, { timeout = 30 })
    srv:wait_line("^RESET 1$")
    H.assert_exit(res, 0)
    assert.same({ "CLOSED" }, H.grep(res.lines, "^CLOSED"))
    assert.same({}, H.grep(res.lines, "^GAVE UP"))
  end)
end)
