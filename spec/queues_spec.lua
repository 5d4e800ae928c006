-- Issue 11, points 2, 8, 9 and 10: the send queues and the error queue. One accounting
-- for every queue a message can sit in (before connect, before the 101, in the engine,
-- in the output buffer); keepalive pings count against it; an onError that causes
-- another error does not hold the loop; nothing of a torn-down session reaches the next
-- peer. Real servers on loopback: spec/servers/peer.py and ws_raw_peer.py.
local H = require "spec.support.helper"
local W = require "spec.support.ws_raw"

-- Lua for a script: fill(conn, chunk, done) offers a few chunks every 10 ms until the
-- kernel buffers towards a peer that does not read are full as well: 20 ticks and 0.3 s
-- in a row in which every send was refused; then done() runs once.
local FILL = [[
local function fill(conn, chunk, done)
  local streak, since, tid = 0, mw.now(), nil
  tid = mw.Timer.add(0.01, function()
    local ok = false
    for _ = 1, 8 do if conn:send(chunk) then ok = true end end
    if ok then streak, since = 0, mw.now() else streak = streak + 1 end
    if streak < 20 or mw.now() - since < 0.3 then return end
    mw.Timer.del(tid)
    done()
  end)
end
]]

describe("the error queue (issue 11 point 8)", function()
  after_each(H.cleanup)

  it("an onError that causes another error every time: timers keep firing, SIGTERM ends it with exit 0", function()
    local srv = H.server("sink")
    local p = H.start([==[
      local mw = require "moonwire"
      local c = mw.AsyncTcpConnection.new(arg[1])
      c.maxSendBufferSize = 10
      local errs = 0
      c.onConnect = function(conn)
        conn:send(("x"):rep(16))       -- fills the queue
        conn:send("y")                 -- refused: SEND_FAIL
      end
      -- each call ends with a refused send, so each error causes the next one
      c.onError = function(conn, code)
        errs = errs + 1
        if code == mw.errors.SEND_FAIL then conn:send(("z"):rep(16)); conn:send("z") end
      end
      c.onClose = function() print("CLOSE", errs > 0) end
      local ticks = 0
      mw.Timer.add(0.02, function() ticks = ticks + 1; print("TICK", ticks, errs) end)
      c:connect()
    ]==], { "tcp://127.0.0.1:" .. srv.port })
    -- timers fire while the chain of errors goes on
    local _, e1 = p:wait_line("^TICK\t2\t(%d+)$", 10)
    local _, e2 = p:wait_line("^TICK\t5\t(%d+)$", 10)
    assert.is_true(tonumber(e1) > 1 and tonumber(e2) > tonumber(e1),
      "errors did not keep coming: " .. e1 .. " then " .. e2)
    p:kill("sigterm")
    local code, signal = p:wait(10)
    assert.equal(0, code, p:describe())
    assert.equal(0, signal)
    assert.same({ "CLOSE\ttrue" }, p:grep("^CLOSE"))
    H.assert_clean({ stderr = p:stderr_text(), stdout = "", code = code })
  end)
end)

describe("no session leaks into the next (issue 11 point 9)", function()
  after_each(H.cleanup)

  -- The server sends one thing on connection 1; the callback it fires tears the
  -- connection down with reConnect. Connection 2 must begin with the GET, and connection
  -- 1 must get nothing more (no pong for a ping its session no longer answers).
  local cases = {
    { cb = "onWebSocketPing", action = "ping:old-session" },
    { cb = "onWebSocketPong", action = "pong:old-session" },
    { cb = "onMessage", action = "text:old-session" },
    { cb = "onWebSocketClose", action = "close:1001:old-session" },
  }
  for _, case in ipairs(cases) do
    it(case.cb .. " that calls reConnect: connection 2 starts with exactly the GET request", function()
      local srv = W.peer()
      local p = H.start(W.script([[
        local c = open()
        local n = 0
        c.onWebSocketConnect = function(conn)
          n = n + 1
          print("WSCONNECT " .. n)
          if n == 2 then conn:close() end
        end
        c.]] .. case.cb .. [[ = function(conn)
          print("CALLBACK " .. n)
          if n == 1 then conn:reConnect(0.2) end
        end
        c:connect()
      ]]), { srv.url })
      p:wait_line("^WSCONNECT 1$", 10)
      W.command(srv, "DO 1 " .. case.action)
      p:wait_line("^CALLBACK 1$", 10)
      local code = p:wait(20)
      assert.equal(0, code, p:describe())
      assert.equal("", p:stderr_text())
      local _, request = srv:wait_line("^REQUEST 2 (.*)$", 10)
      assert.equal("GET / HTTP/1.1", request)
      srv:wait_line("^GONE 2$", 10)
      assert.same({}, W.frame_list(srv, 1))
      assert.same({ "close \\x03\\xe8" }, W.frame_list(srv, 2))
      assert.same({}, srv:grep("^BAD"))
      assert.same({ "WSCONNECT 1", "WSCONNECT 2" }, p:grep("^WSCONNECT"))
      assert.same({ "CLOSE", "CLOSE" }, p:grep("^CLOSE$"))
      assert.same({}, p:grep("^ERROR"))
    end)
  end
end)

describe("one send accounting before the 101 (issue 11 point 10)", function()
  after_each(H.cleanup)

  it("sends before connect() and in onConnect fill maxSendBufferSize like any: refused past it, bufferFull, the queue size, bounded memory",
    function()
      local srv = W.peer { "--hold", "--quiet", "text" }
      local p = H.start(H.MEM_LUA .. W.script [[
        local MAX, CHUNK, OFFER = 256 * 1024, 65536, 1000
        local chunk = ("x"):rep(CHUNK)
        local base = mem("VmRSS")
        local accepted, fails = {}, {}
        local function make(tag)
          local c = mw.AsyncTcpConnection.new(arg[1])
          c.maxSendBufferSize = MAX
          accepted[tag], fails[tag] = 0, 0
          local function offer(conn)
            for _ = 1, OFFER do if conn:send(chunk) then accepted[tag] = accepted[tag] + 1 end end
            print(tag .. " OFFERED " .. accepted[tag] .. " " .. tostring(conn:bufferFull()) .. " " ..
              tostring(conn:getSendBufferQueueSize() >= MAX) .. " " ..
              tostring(conn:getSendBufferQueueSize() < MAX + 2 * CHUNK))
          end
          c.onBufferFull = function() print(tag .. " FULL") end
          c.onBufferDrain = function(conn)
            print(tag .. " DRAIN " .. tostring(conn:bufferFull()) .. " " .. conn:getSendBufferQueueSize())
            conn:close()
          end
          c.onError = function(_, code, m)
            if code == mw.errors.SEND_FAIL then fails[tag] = fails[tag] + 1
            else print(tag .. " ERROR " .. code .. " " .. m) end
          end
          c.onClose = function() print(tag .. " CLOSE " .. accepted[tag] .. " " .. tostring(fails[tag] > 0)) end
          return c, offer
        end
        -- A offers before connect(), B in onConnect (the transport is up, the 101 is not)
        local a, offer_a = make("A")
        offer_a(a)
        a.onConnect = function() print("A CONNECT") end
        a:connect()
        local b, offer_b = make("B")
        b.onConnect = function(conn)
          print("B CONNECT")
          offer_b(conn)
          mw.Timer.add(0.05, function() print("GROWTH_KB " .. (mem("VmHWM") - base)) end, nil, false)
        end
        b:connect()
      ]], { srv.url })
      local _, a_line = p:wait_line("^A OFFERED (.*)$", 20)
      assert.equal("4 true true true", a_line)
      p:wait_line("^B CONNECT$", 20)
      local _, b_line = p:wait_line("^B OFFERED (.*)$", 20)
      assert.equal("4 true true true", b_line)
      local _, growth = p:wait_line("^GROWTH_KB (%-?%d+)$", 20)
      if not H.valgrind then
        assert.is_true(tonumber(growth) < 16 * 1024, "peak memory grew by " .. growth .. " KiB")
      end
      assert.same({ "A FULL" }, p:grep("^A FULL"))
      assert.same({ "B FULL" }, p:grep("^B FULL"))
      assert.same({}, p:grep("DRAIN"))
      -- the 101: what was queued goes out, the queue drains, each closes
      srv:wait_line("^REQUEST%-END %d$", 10)
      srv:wait_line("^REQUEST%-END %d$", 10)
      W.command(srv, "DO * respond")
      local code = p:wait(30)
      assert.equal(0, code, p:describe())
      assert.equal("", p:stderr_text())
      assert.same({ "A DRAIN false 0" }, p:grep("^A DRAIN"))
      assert.same({ "B DRAIN false 0" }, p:grep("^B DRAIN"))
      assert.same({ "A CLOSE 4 true" }, p:grep("^A CLOSE"))
      assert.same({ "B CLOSE 4 true" }, p:grep("^B CLOSE"))
      assert.same({}, p:grep("ERROR"))
      -- every accepted message reached the server, nothing more
      assert.is_true(H.run_until(function() return #srv:grep("^GONE [12]$") == 2 end, 10 * H.slow),
        srv:describe())
      for id = 1, 2 do
        assert.equal(4, #srv:grep("^MESSAGE " .. id .. " text 65536 "))
      end
    end)
end)

describe("keepalive pings and the send queue (issue 11 point 2)", function()
  after_each(H.cleanup)

  it("a ping that does not fit is skipped: a tiny websocketPingInterval against a peer that does not read grows nothing",
    function()
      local srv = W.peer { "--no-read", "--rcvbuf", "4096" }
      local p = H.start(W.script(FILL .. [[
        local c = open()
        c.maxSendBufferSize = 64 * 1024
        c.websocketPingInterval = 0.005
        c.websocketPingTimeout = 0
        c.onError = function(_, code, m) if code ~= mw.errors.SEND_FAIL then print("ERROR " .. code .. " " .. m) end end
        c.onWebSocketConnect = function(conn)
          fill(conn, ("x"):rep(16 * 1024), function()
            local q0 = conn:getSendBufferQueueSize()
            -- a hundred ping intervals
            mw.Timer.add(0.5, function()
              print("GROWN " .. (conn:getSendBufferQueueSize() - q0))
              conn:destroy()
            end, nil, false)
          end)
        end
        c:connect()
      ]]), { srv.url })
      local _, grown = p:wait_line("^GROWN (%-?%d+)$", 30)
      assert.is_true(tonumber(grown) <= 0, "the queue grew by " .. grown .. " bytes of pings")
      local code = p:wait(10)
      assert.equal(0, code, p:describe())
      assert.equal("", p:stderr_text())
      assert.same({}, p:grep("^ERROR"))
    end)

  it("after a skipped ping, websocketPingTimeout still finds a peer dead that neither reads nor sends", function()
    local srv = W.peer { "--no-read", "--rcvbuf", "4096", "--pong", "never" }
    local interval = 1.5 * H.slow
    local p = H.start(W.script(FILL .. [[
      local c = open()
      c.maxSendBufferSize = 64 * 1024
      c.websocketPingInterval = tonumber(arg[2])  -- the first ping comes after the fill
      c.websocketPingTimeout = 0.3
      local t0
      c.onError = function(_, code, m)
        if code ~= mw.errors.SEND_FAIL then print(("ERROR %d %s AT %.3f"):format(code, m, mw.now() - t0)) end
      end
      c.onWebSocketConnect = function(conn)
        t0 = mw.now()
        fill(conn, ("x"):rep(16 * 1024), function() print(("STUCK %.3f"):format(mw.now() - t0)) end)
      end
      c:connect()
    ]]), { srv.url, interval })
    local _, stuck = p:wait_line("^STUCK ([%d.]+)$", 30)
    assert.is_true(tonumber(stuck) < interval, "filling took " .. stuck .. " s, longer than the ping interval")
    local _, msg, at = p:wait_line("^ERROR 8 (.*) AT ([%d.]+)$", 30)
    assert.equal("websocket " .. srv.url .. ": the server neither sent nor read anything within 0.3s " ..
      "(send buffer full, ping not sent)", msg)
    assert.is_true(tonumber(at) >= interval + 0.29, "failed at " .. at)
    local code = p:wait(10)
    assert.equal(0, code, p:describe())
    assert.equal("", p:stderr_text())
    assert.same({ "CLOSE" }, p:grep("^CLOSE"))
  end)
end)
