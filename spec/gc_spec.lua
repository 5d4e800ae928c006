-- Issue 2, item 9: a connection the script no longer references keeps working while open
-- and is collected after close; methods on a closed connection return false or nil and
-- never crash.
local H = require "spec.support.helper"

describe("connection lifetime (issue 2 item 9)", function()
  after_each(H.cleanup)

  it("an unreferenced open connection keeps working through full collections, and is collected after close",
    function()
      local srv = H.server("echo")
      local res = H.run([==[
        local mw = require "moonwire"
        local weak = setmetatable({}, { __mode = "v" })
        local function start()
          local c = mw.AsyncTcpConnection.new(arg[1])
          local n = 0
          c.onConnect = function(conn) conn:send("m1") end
          c.onMessage = function(conn, data)
            n = n + 1
            collectgarbage("collect")
            if n < 5 then conn:send("m" .. (n + 1)) else conn:close() end
          end
          c.onClose = function(conn)
            print("CLOSED", n)
            mw.Timer.add(0.05, function()
              collectgarbage("collect"); collectgarbage("collect")
              print("COLLECTED", weak[1] == nil)
              mw.Timer.delAll()
            end, nil, false)
          end
          c:connect()
          weak[1] = c
        end
        start()
        collectgarbage("collect")
        print("REFERENCED ONLY WEAKLY", weak[1] ~= nil)
        mw.Timer.add(0.005, function() collectgarbage("collect") end)
      ]==], { "text://127.0.0.1:" .. srv.port })
      H.assert_exit(res, 0)
      assert.same({ "REFERENCED ONLY WEAKLY\ttrue", "CLOSED\t5", "COLLECTED\ttrue" }, res.lines)
      for i = 1, 5 do srv:wait_line("^LINE 1 m" .. i .. "$") end
      srv:wait_line("^CLOSE 1 15$")
    end)

  it("a hundred unreferenced connections all complete and are all collected", function()
    local srv = H.server("echo")
    local res = H.run([==[
      local mw = require "moonwire"
      local weak = setmetatable({}, { __mode = "k" })
      local N, closed, echoed = 100, 0, 0
      for i = 1, N do
        local c = mw.AsyncTcpConnection.new(arg[1])
        c.onConnect = function(conn) conn:send("hi " .. i) end
        c.onMessage = function(conn, data)
          if data == "hi " .. i then echoed = echoed + 1 end
          conn:close()
        end
        c.onClose = function()
          closed = closed + 1
          if closed == N then
            mw.Timer.add(0.05, function()
              collectgarbage("collect"); collectgarbage("collect")
              local left = 0
              for _ in pairs(weak) do left = left + 1 end
              print("DONE", echoed, closed, left)
            end, nil, false)
          end
        end
        c:connect()
        weak[c] = true
      end
    ]==], { "text://127.0.0.1:" .. srv.port })
    H.assert_exit(res, 0)
    assert.same({ "DONE\t100\t100\t0" }, res.lines)
    srv:wait_line("^CONNECT 100$")
  end)

  it("methods on a closed connection return false or nil and never crash", function()
    local srv = H.server("echo")
    local res = H.run([==[
      local mw = require "moonwire"
      local ACTIONS = { "send", "sendText", "sendBinary", "close", "finish", "destroy",
                        "pauseRecv", "resumeRecv", "cancelReconnect" }
      local QUERIES = { "getRemoteIp", "getRemotePort", "getRemoteAddress", "getLocalIp",
                        "getLocalPort", "isIpV4", "isIpV6", "bufferFull",
                        "getSendBufferQueueSize", "getRecvBufferQueueSize" }
      local function probe(conn, when)
        local bad = {}
        for _, m in ipairs(ACTIONS) do
          local ok, r = pcall(conn[m], conn, "data")
          if not ok or (r ~= nil and r ~= false) then bad[#bad + 1] = m .. "=" .. tostring(r) end
        end
        for _, m in ipairs(QUERIES) do
          local ok, r = pcall(conn[m], conn)
          if not ok then bad[#bad + 1] = m .. " raised " .. tostring(r) end
        end
        print(when, conn:getStatus(), #bad == 0 and "ok" or table.concat(bad, " "))
      end
      local c = mw.AsyncTcpConnection.new(arg[1])
      c.onConnect = function(conn) conn:close() end
      c.onClose = function(conn)
        probe(conn, "IN ONCLOSE")
        mw.Timer.add(0.05, function()
          collectgarbage("collect")
          probe(c, "LATER")
        end, nil, false)
      end
      c:connect()
    ]==], { "text://127.0.0.1:" .. srv.port })
    H.assert_exit(res, 0)
    assert.same({ "IN ONCLOSE\tCLOSED\tok",
      "LATER\tCLOSED\tok" }, res.lines)
  end)

  it("a method called on something that is not a connection raises, it does not crash", function()
    local res = H.run([==[
      local mw = require "moonwire"
      local c = mw.AsyncTcpConnection.new("tcp://127.0.0.1:1")
      print("SEND ON TABLE", (pcall(c.send, {}, "x")))
      print("STATUS ON NIL", (pcall(c.getStatus, nil)))
    ]==])
    H.assert_exit(res, 0)
    assert.same({ "SEND ON TABLE\tfalse", "STATUS ON NIL\tfalse" }, res.lines)
  end)
end)
