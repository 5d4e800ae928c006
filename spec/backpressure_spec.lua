-- Issue 2, item 6: backpressure. Against a server that does not read, send() refuses
-- once the queue passes maxSendBufferSize, onBufferFull fires once per full episode,
-- memory stays bounded, and onBufferDrain fires when the server reads again.
-- pauseRecv/resumeRecv stop and restart reading, so the server's writes block.
local H = require "spec.support.helper"

describe("backpressure (issue 2 item 6)", function()
  after_each(H.cleanup)

  it("send() returns false past maxSendBufferSize, onBufferFull once, onBufferDrain when the peer reads",
    function()
      local srv = H.server("sink")
      local p = H.start(H.MEM_LUA .. [==[
        local mw = require "moonwire"
        local MAX, CHUNK = 1024 * 1024, 65536
        local chunk = string.rep("x", CHUNK)
        local c = mw.AsyncTcpConnection.new(arg[1])
        c.maxSendBufferSize = MAX
        local accepted, events, phase = 0, {}, "burst"
        local base = mem("VmRSS")
        local function send(conn)
          if conn:send(chunk) then accepted = accepted + CHUNK; return true end
          return false
        end
        local function fulls()
          local n = 0
          for _, e in ipairs(events) do if e == "F" then n = n + 1 end end
          return n
        end
        c.onBufferFull = function(conn)
          events[#events + 1] = "F"
          if #events == 1 then
            print("FIRST FULL", conn:bufferFull(), conn:getSendBufferQueueSize() >= MAX)
          end
        end
        c.onBufferDrain = function(conn)
          events[#events + 1] = "D"
          if phase == "reading" then
            print("DRAIN", conn:bufferFull(), conn:getSendBufferQueueSize())
            conn:close()
          end
        end
        c.onConnect = function(conn)
          -- 1. offer 250 MiB in one callback: the queue fills once, the rest is refused,
          --    and refusing does not fire onBufferFull again
          local refused = 0
          for _ = 1, 4000 do if not send(conn) then refused = refused + 1 end end
          -- (callbacks may be deferred to the loop: count them a moment later)
          mw.Timer.add(0.001, function() print("BURST", accepted >= MAX, refused >= 3900, fulls()) end,
            nil, false)
          -- 2. keep offering a few chunks a tick until the kernel buffers are full too:
          --    20 ticks and 0.3 s in a row where every send is refused
          local streak, since, tid = 0, mw.now(), nil
          tid = mw.Timer.add(0.01, function()
            local ok = false
            for _ = 1, 8 do if send(conn) then ok = true end end
            if ok then streak, since = 0, mw.now() else streak = streak + 1 end
            if streak < 20 or mw.now() - since < 0.3 then return end
            mw.Timer.del(tid)
            local before, extra = fulls(), 0
            for _ = 1, 2048 do if send(conn) then extra = extra + 1 end end   -- 128 MiB more
            mw.Timer.add(0.05, function()
              local q = conn:getSendBufferQueueSize()
              print("STUCK", extra, fulls() == before, q <= MAX + CHUNK)
              print("GROWTH_KB", mem("VmHWM") - base)
              phase = "reading"
            end, nil, false)
          end)
        end
        c.onClose = function(conn) print("CLOSED", accepted, conn:bufferFull()) end
        -- like Workerman, a dropped message may be reported as SEND_FAIL; nothing else
        c.onError = function(_, code, msg)
          if code ~= mw.errors.SEND_FAIL then print("ERROR", code, msg) end
        end
        c:connect()
      ]==], { "tcp://127.0.0.1:" .. srv.port })
      local _, first = p:wait_line("^FIRST FULL\t(.*)$", 20)
      assert.equal("true\ttrue", first)
      local _, burst = p:wait_line("^BURST\t(.*)$", 20)
      assert.equal("true\ttrue\t1", burst)
      local _, stuck = p:wait_line("^STUCK\t(.*)$", 30)
      assert.equal("0\ttrue\ttrue", stuck)
      local _, growth = p:wait_line("^GROWTH_KB\t(%-?%d+)$")
      if not H.valgrind then
        assert.is_true(tonumber(growth) < 32 * 1024, "peak memory grew by " .. growth .. " KiB")
      end
      assert.same({}, p:grep("^DRAIN"))
      srv:send("READ\n")
      srv:wait_line("^READING$")
      local _, drain = p:wait_line("^DRAIN\t(.*)$", 20)
      assert.equal("false\t0", drain)
      local _, accepted = p:wait_line("^CLOSED\t(%d+)\tfalse$", 20)
      local code = p:wait(20)
      assert.equal(0, code, p:describe())
      H.assert_clean({ stderr = p:stderr_text(), stdout = "", code = code })
      assert.same({}, p:grep("^ERROR"))
      -- every byte send() accepted reached the server, nothing more
      srv:wait_line("^CLOSE 1 " .. accepted .. "$", 20)
    end)

  it("pauseRecv stops reading (the server's writes block) and resumeRecv restarts it", function()
    local LIMIT = 16 * 1024 * 1024
    local srv = H.server("flood", { "--limit", LIMIT })
    local res = H.run([==[
      local mw = require "moonwire"
      local LIMIT = tonumber(arg[2])
      local got = 0
      local c = mw.AsyncTcpConnection.new(arg[1])
      c.onConnect = function(conn)
        print("PAUSE", conn:pauseRecv() ~= false)
        mw.Timer.add(1.0, function()
          print("RESUME", got <= 262144, conn:resumeRecv() ~= false)
        end, nil, false)
      end
      c.onMessage = function(conn, data)
        got = got + #data
        if got >= LIMIT then print("ALL", got); conn:close() end
      end
      c.onError = function(_, code, msg) print("ERROR", code, msg) end
      c:connect()
    ]==], { "tcp://127.0.0.1:" .. srv.port, LIMIT }, { timeout = 60 })
    H.assert_exit(res, 0)
    assert.same({ "PAUSE\ttrue", "RESUME\ttrue\ttrue", "ALL\t" .. LIMIT }, res.lines)
    -- the server saw its writes block for most of the pause
    srv:wait_line("^STALL 1 %d+$")
    local _, secs = srv:wait_line("^UNBLOCKED 1 %d+ ([%d.]+)$")
    assert.is_true(tonumber(secs) >= 0.5, "blocked for only " .. secs .. " s")
    srv:wait_line("^DONE 1 " .. LIMIT .. "$")
  end)

  it("pauseRecv twice and resumeRecv when not paused are harmless", function()
    local srv = H.server("echo")
    local res = H.run([==[
      local mw = require "moonwire"
      local c = mw.AsyncTcpConnection.new(arg[1])
      c.onConnect = function(conn)
        conn:resumeRecv()
        conn:pauseRecv(); conn:pauseRecv()
        conn:send("while paused")
        mw.Timer.add(0.2, function() print("RESUME"); conn:resumeRecv(); conn:resumeRecv() end,
          nil, false)
      end
      c.onMessage = function(conn, data) print("ECHO", data); conn:close() end
      c:connect()
    ]==], { "text://127.0.0.1:" .. srv.port })
    H.assert_exit(res, 0)
    assert.same({ "RESUME", "ECHO\twhile paused" }, res.lines)
  end)
end)
