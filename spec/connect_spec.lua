-- Issue 2, item 5: connect failures, reConnect / cancelReconnect, connectTimeout; and the
-- connection's life cycle (status, addresses, counters, close/finish/destroy).
local H = require "spec.support.helper"

describe("connecting (issue 2 item 5)", function()
  after_each(H.cleanup)

  it("connection refused: onError(conn, CONNECT_FAIL, msg) then onClose, reported after connect() returned",
    function()
      local res = H.run([==[
        local mw = require "moonwire"
        local c = mw.AsyncTcpConnection.new("tcp://127.0.0.1:1")
        c.onConnect = function() print("CONNECTED?!") end
        c.onError = function(conn, code, msg)
          print("ERROR", conn == c, code == mw.errors.CONNECT_FAIL, code, msg)
        end
        c.onClose = function(conn) print("CLOSED", conn == c, conn:getStatus()) end
        print("STATUS", c:getStatus())
        c:connect()
        print("RETURNED", c:getStatus())
      ]==])
      H.assert_exit(res, 0)
      assert.same({ "STATUS\tINITIAL", "RETURNED\tCONNECTING",
        "ERROR\ttrue\ttrue\t1\tconnect tcp://127.0.0.1:1: connection refused",
        "CLOSED\ttrue\tCLOSED" }, res.lines)
    end)

  it("mw.errors holds the stable codes", function()
    local res = H.run([==[
      local e = require("moonwire").errors
      for _, k in ipairs { "CONNECT_FAIL", "SEND_FAIL", "DNS_FAIL", "TLS_FAIL", "HANDSHAKE_FAIL",
                           "PROTOCOL_FAIL", "PACKAGE_TOO_LARGE", "TIMEOUT" } do
        print(k, e[k])
      end
    ]==])
    H.assert_exit(res, 0)
    assert.same({ "CONNECT_FAIL\t1", "SEND_FAIL\t2", "DNS_FAIL\t3", "TLS_FAIL\t4",
      "HANDSHAKE_FAIL\t5", "PROTOCOL_FAIL\t6", "PACKAGE_TOO_LARGE\t7", "TIMEOUT\t8" }, res.lines)
  end)

  it("reConnect(0.1) from onClose retries; each attempt gives onError then onClose", function()
    local res = H.run([==[
      local mw = require "moonwire"
      local c = mw.AsyncTcpConnection.new("tcp://127.0.0.1:1")
      local attempts, last = 0, nil
      c.onError = function(conn, code) print("ERROR", code) end
      c.onClose = function(conn)
        attempts = attempts + 1
        local now = mw.now()
        print("CLOSED", attempts, last == nil or now - last >= 0.09)
        last = now
        if attempts < 3 then conn:reConnect(0.1) end
      end
      c:connect()
    ]==])
    H.assert_exit(res, 0)
    assert.same({ "ERROR\t1", "CLOSED\t1\ttrue", "ERROR\t1", "CLOSED\t2\ttrue", "ERROR\t1",
      "CLOSED\t3\ttrue" }, res.lines)
  end)

  it("reConnect after a successful connection opens a new one to the same server", function()
    local srv = H.server("echo")
    local res = H.run([==[
      local mw = require "moonwire"
      local c = mw.AsyncTcpConnection.new(arg[1])
      local n = 0
      c.onConnect = function(conn) n = n + 1; conn:send("hello " .. n) end
      c.onMessage = function(conn, data) print("ECHO", data, conn:getStatus()); conn:close() end
      c.onClose = function(conn)
        print("CLOSED", n)
        if n < 3 then conn:reConnect(0.05) end
      end
      c:connect()
    ]==], { "text://127.0.0.1:" .. srv.port })
    H.assert_exit(res, 0)
    assert.same({ "ECHO\thello 1\tESTABLISHED", "CLOSED\t1", "ECHO\thello 2\tESTABLISHED",
      "CLOSED\t2", "ECHO\thello 3\tESTABLISHED", "CLOSED\t3" }, res.lines)
    for i = 1, 3 do
      srv:wait_line("^CONNECT " .. i .. "$")
      srv:wait_line("^LINE " .. i .. " hello " .. i .. "$")
      srv:wait_line("^CLOSE " .. i .. " ")
    end
  end)

  it("cancelReconnect() stops a pending reconnect; the process then exits", function()
    local res = H.run([==[
      local mw = require "moonwire"
      local c = mw.AsyncTcpConnection.new("tcp://127.0.0.1:1")
      local closes = 0
      c.onClose = function(conn)
        closes = closes + 1
        print("CLOSED", closes)
        conn:reConnect(0.3)
        mw.Timer.add(0.05, function() print("CANCEL"); conn:cancelReconnect() end, nil, false)
      end
      c:connect()
    ]==])
    H.assert_exit(res, 0)
    assert.same({ "CLOSED\t1", "CANCEL" }, res.lines)
    assert.is_true(res.elapsed < 3 * H.slow)
  end)

  it("a second reConnect replaces the pending one", function()
    local res = H.run([==[
      local mw = require "moonwire"
      local c = mw.AsyncTcpConnection.new("tcp://127.0.0.1:1")
      local closes, t = 0, nil
      c.onClose = function(conn)
        closes = closes + 1
        if closes == 1 then
          t = mw.now()
          conn:reConnect(30)
          conn:reConnect(0.1)
        else
          local dt = mw.now() - t
          print("RETRIED", closes, dt >= 0.09 and dt < 5)
        end
      end
      c:connect()
    ]==])
    H.assert_exit(res, 0)
    assert.same({ "RETRIED\t2\ttrue" }, res.lines)
    assert.is_true(res.elapsed < 10)
  end)

  it("connectTimeout is honoured against a listener whose accept queue is full", function()
    local hole = H.server("blackhole")
    hole:wait_line("^FILLED %d+$")
    local url = "tcp://127.0.0.1:" .. hole.port
    local res = H.run([==[
      local mw = require "moonwire"
      local c = mw.AsyncTcpConnection.new(arg[1])
      c.connectTimeout = 0.5
      local t0 = mw.now()
      c.onConnect = function() print("CONNECTED?!") end
      c.onError = function(conn, code, msg)
        print("ERROR", code, msg)
        print("AFTER", string.format("%.1f", mw.now() - t0))
      end
      c.onClose = function(conn) print("CLOSED", conn:getStatus()) end
      c:connect()
    ]==], { url })
    H.assert_exit(res, 0)
    assert.equal(3, #res.lines, H.describe(res))
    assert.equal("ERROR\t1\tconnect " .. url .. ": timed out after 0.5s", res.lines[1])
    local secs = tonumber(res.lines[2]:match("^AFTER\t([%d.]+)$"))
    assert.is_true(secs >= 0.4 and secs <= 2 * H.slow, "timed out after " .. secs .. " s")
    assert.equal("CLOSED\tCLOSED", res.lines[3])
  end)

  it("reports addresses, status and byte counters of an established connection", function()
    local srv = H.server("echo")
    local res = H.run([==[
      local mw = require "moonwire"
      local c = mw.AsyncTcpConnection.new(arg[1])
      c.myField = { answer = 42 }
      c.onConnect = function(conn)
        print("STATUS", conn:getStatus())
        print("REMOTE", conn:getRemoteIp(), conn:getRemotePort(), conn:getRemoteAddress())
        local lp = conn:getLocalPort()
        print("LOCAL", conn:getLocalIp(), math.type(lp), lp > 0 and lp ~= tonumber(arg[2]))
        print("FAMILY", conn:isIpV4(), conn:isIpV6())
        print("FIELD", conn.myField.answer, conn.url == arg[1], math.type(conn.id))
        conn:send("abc")
      end
      c.onMessage = function(conn, data)
        print("ECHO", data, conn.bytesRead, conn.bytesWritten)
        conn:close()
      end
      c.onClose = function(conn) print("CLOSED", conn:getStatus()) end
      c:connect()
    ]==], { "text://127.0.0.1:" .. srv.port, srv.port })
    H.assert_exit(res, 0)
    assert.same({
      "STATUS\tESTABLISHED",
      "REMOTE\t127.0.0.1\t" .. srv.port .. "\t127.0.0.1:" .. srv.port,
      "LOCAL\t127.0.0.1\tinteger\ttrue",
      "FAMILY\ttrue\tfalse",
      "FIELD\t42\ttrue\tinteger",
      "ECHO\tabc\t4\t4",
      "CLOSED\tCLOSED",
    }, res.lines)
  end)

  it("two connections get distinct ids", function()
    local res = H.run([==[
      local mw = require "moonwire"
      local a = mw.AsyncTcpConnection.new("tcp://127.0.0.1:1")
      local b = mw.AsyncTcpConnection.new("tcp://127.0.0.1:1")
      print("IDS", math.type(a.id), a.id ~= b.id)
    ]==])
    H.assert_exit(res, 0)
    assert.same({ "IDS\tinteger\ttrue" }, res.lines)
  end)

  it("finish(data) flushes then closes; close(data) too; destroy() closes at once", function()
    local srv = H.server("echo")
    local res = H.run([==[
      local mw = require "moonwire"
      local function open(how)
        local c = mw.AsyncTcpConnection.new(arg[1])
        c.onConnect = function(conn)
          if how == "finish" then conn:finish("by finish")
          elseif how == "close" then conn:close("by close")
          else conn:send("before destroy"); conn:destroy() end
        end
        c.onClose = function(conn) print("CLOSED", how, conn:getStatus()) end
        c.onError = function(_, code, msg) print("ERROR", how, code, msg) end
        c:connect()
        return c
      end
      -- one after the other, so the server's connection ids are 1, 2, 3
      local order = { "finish", "close", "destroy" }
      local i = 1
      local function next_one()
        local c = open(order[i])
        local prev = c.onClose
        c.onClose = function(conn)
          prev(conn)
          i = i + 1
          if order[i] then next_one() end
        end
      end
      next_one()
    ]==], { "text://127.0.0.1:" .. srv.port })
    H.assert_exit(res, 0)
    assert.same({ "CLOSED\tfinish\tCLOSED", "CLOSED\tclose\tCLOSED", "CLOSED\tdestroy\tCLOSED" },
      res.lines)
    -- the server may report a new connection before the previous one's data
    srv:wait_line("^CLOSE 3 %d+$")
    assert.same({ "LINE 1 by finish", "LINE 2 by close" }, srv:grep("^LINE"))
    assert.same({ "CLOSE 1 10", "CLOSE 2 9" }, srv:grep("^CLOSE [12] "))
  end)

  it("onClose runs once even when close() is called repeatedly, also from callbacks", function()
    local srv = H.server("echo")
    local res = H.run([==[
      local mw = require "moonwire"
      local c = mw.AsyncTcpConnection.new(arg[1])
      local closes = 0
      c.onConnect = function(conn) conn:send("x") end
      c.onMessage = function(conn) conn:close(); conn:close(); conn:destroy() end
      c.onClose = function(conn) closes = closes + 1; conn:close() end
      mw.Timer.add(0.3, function() print("CLOSES", closes) end, nil, false)
      c:connect()
    ]==], { "text://127.0.0.1:" .. srv.port })
    H.assert_exit(res, 0)
    assert.same({ "CLOSES\t1" }, res.lines)
  end)

  it("send() before connect() queues the data and sends it once connected", function()
    local srv = H.server("echo")
    local res = H.run([==[
      local mw = require "moonwire"
      local c = mw.AsyncTcpConnection.new(arg[1])
      print("QUEUED", c:send("early one"), c:send("early two"))
      local n = 0
      c.onMessage = function(conn, data)
        n = n + 1
        print("ECHO", data)
        if n == 2 then conn:close() end
      end
      c:connect()
    ]==], { "text://127.0.0.1:" .. srv.port })
    H.assert_exit(res, 0)
    assert.same({ "QUEUED\ttrue\ttrue", "ECHO\tearly one", "ECHO\tearly two" }, res.lines)
  end)

  it("a ws:// request the handshake would refuse fails before connecting: no DNS query, no TCP connect, onError HANDSHAKE_FAIL after connect() returned, then onClose", function()
    local dns = H.dns_server { "--record", "refused.test=127.0.0.1", "--record", "control.test=127.0.0.1" }
    local srv = H.server("echo", { "--framing", "raw" })   -- reports every accept (CONNECT id)
    local res = H.run([==[
      local mw = require "moonwire"
      local port = arg[1]
      local cases = {   -- name, url host, setup; each refused by the ws engine's request check
        { "value CRLF", "refused.test", function(c) c.headers = { ["X-Evil"] = "a\r\nInjected: 1" } end },
        { "name NUL", "refused.test", function(c) c.headers = { ["X-Nul\0Name"] = "v" } end },
        { "reserved", "refused.test", function(c) c.headers = { ["Sec-WebSocket-Key"] = "mine" } end },
        { "origin LF", "127.0.0.1", function(c) c.websocketOrigin = "https://a.example\nX: y" end },
        { "protocol", "127.0.0.1", function(c) c.websocketClientProtocol = "chat, not a token" end },
      }
      local left = #cases
      local function control()
        -- after every refusal: one connection the listener must see as its first
        local k = mw.AsyncTcpConnection.new("tcp://control.test:" .. port)
        k.onConnect = function(conn) conn:send("control") end
        k.onMessage = function(conn) print("CONTROL ECHO"); conn:close() end
        k:connect()
      end
      for _, case in ipairs(cases) do
        local c = mw.AsyncTcpConnection.new("ws://" .. case[2] .. ":" .. port .. "/x")
        case[3](c)
        local errors = 0
        c.onConnect = function() print("CONNECTED?!", case[1]) end
        c.onError = function(conn, code, msg)
          errors = errors + 1
          print("ERROR", case[1], code, msg)
        end
        c.onClose = function(conn)
          print("CLOSED", case[1], errors, conn:getStatus())
          left = left - 1
          if left == 0 then control() end
        end
        print("CONNECT", case[1], c:connect(), c:getStatus())
      end
    ]==], { srv.port }, { env = dns.env })
    H.assert_exit(res, 0)
    assert.equal("", res.stderr)
    local function url(host) return "ws://" .. host .. ":" .. srv.port .. "/x" end
    local function refused(host, why)
      return "websocket handshake with " .. url(host) .. " refused: " .. why .. "; nothing was sent"
    end
    -- connect() returns first (the connection already CLOSED), the events follow from the loop
    assert.same({
      "CONNECT\tvalue CRLF\ttrue\tCLOSED", "CONNECT\tname NUL\ttrue\tCLOSED",
      "CONNECT\treserved\ttrue\tCLOSED", "CONNECT\torigin LF\ttrue\tCLOSED",
      "CONNECT\tprotocol\ttrue\tCLOSED",
      "ERROR\tvalue CRLF\t5\t" .. refused("refused.test", 'header "X-Evil" has a CR, LF or NUL in its value'),
      "CLOSED\tvalue CRLF\t1\tCLOSED",
      "ERROR\tname NUL\t5\t" .. refused("refused.test", 'header "X-Nul\\x00Name" is not a valid header name'),
      "CLOSED\tname NUL\t1\tCLOSED",
      "ERROR\treserved\t5\t" .. refused("refused.test",
        'header "Sec-WebSocket-Key" is set by the WebSocket handshake itself'),
      "CLOSED\treserved\t1\tCLOSED",
      "ERROR\torigin LF\t5\t" .. refused("127.0.0.1", "websocketOrigin has a CR, LF or NUL"),
      "CLOSED\torigin LF\t1\tCLOSED",
      "ERROR\tprotocol\t5\t" .. refused("127.0.0.1",
        'websocketClientProtocol "chat, not a token" is not a comma-separated list of tokens'),
      "CLOSED\tprotocol\t1\tCLOSED",
      "CONTROL ECHO",
    }, res.lines)
    -- the listener's first and only accept is the control connection's
    srv:wait_line("^RECV 1 7$")
    assert.same({ "CONNECT 1" }, srv:grep("^CONNECT "))
    -- and the resolver was asked about control.test only
    dns:wait_line("^QUERY control%.test ")
    assert.same({}, dns:grep("^QUERY refused%.test "))
  end)

  it("misuse raises: an unknown scheme", function()
    local res = H.run([==[
      local mw = require "moonwire"
      local ok, err = pcall(mw.AsyncTcpConnection.new, "gopher://127.0.0.1:70")
      print("NEW", ok, type(err))
    ]==])
    H.assert_exit(res, 0)
    assert.same({ "NEW\tfalse\tstring" }, res.lines)
  end)
end)
