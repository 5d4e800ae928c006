-- Issue 2, item 2: text:// and frame:// decode whatever the segmentation (one byte at a
-- time, 1,000 messages in one write), send encodes, maxPackageSize bounds memory.
local H = require "spec.support.helper"

-- A client that sends `msgs` on connect, prints every message it gets as MSG <escaped>,
-- and closes after `expect` messages.
local ECHO_CLIENT = [==[
local mw = require "moonwire"
local msgs = load("return " .. arg[2])()
local expect = tonumber(arg[3]) or #msgs
local n = 0
local c = mw.AsyncTcpConnection.new(arg[1])
c.onConnect = function(conn)
  for _, m in ipairs(msgs) do assert(conn:send(m) == true) end
end
c.onMessage = function(conn, data, kind)
  n = n + 1
  print("MSG " .. string.format("%q", data):gsub("\\\n", "\\n"))
  if kind ~= nil then print("KIND", kind) end
  if n == expect then conn:close() end
end
c.onError = function(_, code, msg) print("ERROR", code, msg) end
c.onClose = function() print("CLOSED", n) end
c:connect()
]==]

local function q(s) return "MSG " .. (string.format("%q", s):gsub("\\\n", "\\n")) end

-- Burst checks: the server's message i is rebuilt here (see spec/servers/peer.py).
local BURST_CLIENT = [==[
local mw = require "moonwire"
local framing, count = arg[2], tonumber(arg[3])
local function expected(i)
  if framing == "line" then return "msg-" .. i end
  local t = { ("f%d|"):format(i) }
  for j = 0, i % 64 - 1 do t[#t + 1] = string.char((i * 31 + j) % 256) end
  return table.concat(t)
end
local n, bad = 0, 0
local c = mw.AsyncTcpConnection.new(arg[1])
c.onMessage = function(conn, data)
  n = n + 1
  if data ~= expected(n) then
    bad = bad + 1
    if bad <= 3 then print("BAD", n, #data, string.format("%q", data)) end
  end
  if n == count then
    print("GOT", n, "BAD", bad)
    conn:close()
  end
end
c.onError = function(_, code, msg) print("ERROR", code, msg) end
c.onClose = function() print("CLOSED", n) end
c:connect()
]==]

-- The client of a server that sends a message larger than maxPackageSize; prints its
-- peak memory growth (KiB) at the close.
local HUGE_CLIENT = H.MEM_LUA .. [==[
local mw = require "moonwire"
local base = mem("VmRSS")
local c = mw.AsyncTcpConnection.new(arg[1])
if arg[2] ~= "default" then c.maxPackageSize = tonumber(arg[2]) end
local msgs, errors, closes = 0, 0, 0
c.onMessage = function() msgs = msgs + 1 end
c.onError = function(conn, code, msg)
  errors = errors + 1
  print("ERROR", code == mw.errors.PACKAGE_TOO_LARGE, code, msg)
end
c.onClose = function(conn)
  closes = closes + 1
  print("CLOSED", msgs, errors, closes, conn:getStatus())
  print("GROWTH_KB", mem("VmHWM") - base)
end
c:connect()
]==]

describe("text:// and frame:// (issue 2 item 2)", function()
  after_each(H.cleanup)

  it("text:// decodes replies written one byte at a time and send appends the newline",
    function()
      local srv = H.server("dribble", { "--framing", "line" })
      local res = H.run(ECHO_CLIENT,
        { "text://127.0.0.1:" .. srv.port, '{"alpha", "b", "gamma delta", "tab\\tand\\0nul"}' })
      H.assert_exit(res, 0)
      assert.same({ q "alpha", q "b", q "gamma delta", q "tab\tand\0nul", "CLOSED\t4" }, res.lines)
      assert.equal("LINE 1 alpha", (srv:wait_line("^LINE")))
      assert.equal("LINE 1 b", (srv:wait_line("^LINE")))
      assert.equal("LINE 1 gamma delta", (srv:wait_line("^LINE")))
      assert.equal("LINE 1 tab\\tand\\x00nul", (srv:wait_line("^LINE")))
      srv:wait_line("^CLOSE 1 " .. #"alpha\nb\ngamma delta\ntab\tand\0nul\n" .. "$")
    end)

  it("text:// delivers an empty line as an empty message", function()
    local srv = H.server("dribble", { "--framing", "line" })
    local res = H.run(ECHO_CLIENT, { "text://127.0.0.1:" .. srv.port, '{"a", "", "c"}' })
    H.assert_exit(res, 0)
    assert.same({ q "a", q "", q "c", "CLOSED\t3" }, res.lines)
  end)

  it("frame:// decodes frames written one byte at a time and send adds the length prefix",
    function()
      local srv = H.server("dribble", { "--framing", "frame" })
      local res = H.run(ECHO_CLIENT,
        { "frame://127.0.0.1:" .. srv.port, '{"hello", "", "a\\nb", "\\0\\1\\255"}' })
      H.assert_exit(res, 0)
      assert.same({ q "hello", q "", q "a\nb", q "\0\1\255", "CLOSED\t4" }, res.lines)
      assert.equal("FRAME 1 5 hello", (srv:wait_line("^FRAME")))
      assert.equal("FRAME 1 0 ", (srv:wait_line("^FRAME")))
      assert.equal("FRAME 1 3 a\\nb", (srv:wait_line("^FRAME")))
      assert.equal("FRAME 1 3 \\x00\\x01\\xff", (srv:wait_line("^FRAME")))
      srv:wait_line("^CLOSE 1 " .. (4 * 4 + 5 + 0 + 3 + 3) .. "$")
    end)

  it("text:// decodes 1,000 lines that arrive in one write", function()
    local srv = H.server("burst", { "--framing", "line", "--count", 1000 })
    local res = H.run(BURST_CLIENT, { "text://127.0.0.1:" .. srv.port, "line", 1000 })
    H.assert_exit(res, 0)
    assert.same({ "GOT\t1000\tBAD\t0", "CLOSED\t1000" }, res.lines)
  end)

  it("frame:// decodes 1,000 binary frames that arrive in one write", function()
    local srv = H.server("burst", { "--framing", "frame", "--count", 1000 })
    local res = H.run(BURST_CLIENT, { "frame://127.0.0.1:" .. srv.port, "frame", 1000 })
    H.assert_exit(res, 0)
    assert.same({ "GOT\t1000\tBAD\t0", "CLOSED\t1000" }, res.lines)
  end)

  it("frame:// round-trips a 3 MiB frame (under the default maxPackageSize)", function()
    local srv = H.server("frame")
    local res = H.run([==[
      local mw = require "moonwire"
      local big = {}
      for i = 1, 3 * 1024 * 1024 / 8 do big[i] = string.pack(">I8", i) end
      big = table.concat(big)
      local c = mw.AsyncTcpConnection.new(arg[1])
      c.onConnect = function(conn) conn:send(big) end
      c.onMessage = function(conn, data)
        print("ECHO", #data, data == big)
        conn:close()
      end
      c.onError = function(_, code, msg) print("ERROR", code, msg) end
      c:connect()
    ]==], { "frame://127.0.0.1:" .. srv.port })
    H.assert_exit(res, 0)
    assert.same({ "ECHO\t3145728\ttrue" }, res.lines)
    srv:wait_line("^FRAME 1 3145728 ")
  end)

  it("text:// line longer than maxPackageSize: onError PACKAGE_TOO_LARGE, then onClose; memory stays bounded",
    function()
      -- the server offers 64 MiB with no newline; the client allows 1 MiB
      local srv = H.server("huge", { "--framing", "line", "--limit", 64 * 1024 * 1024 })
      local res = H.run(HUGE_CLIENT, { "text://127.0.0.1:" .. srv.port, 1024 * 1024 })
      H.assert_exit(res, 0)
      assert.equal(3, #res.lines, H.describe(res))
      assert.matches("^ERROR\ttrue\t7\t.*maxPackageSize", res.lines[1])
      assert.equal("CLOSED\t0\t1\t1\tCLOSED", res.lines[2])
      local growth = tonumber(res.lines[3]:match("^GROWTH_KB\t(%-?%d+)$"))
      if not H.valgrind then
        assert.is_true(growth < 24 * 1024, "peak memory grew by " .. growth .. " KiB")
      end
      srv:wait_line("^CLOSE 1 ")
    end)

  it("text:// refuses a whole line longer than maxPackageSize even when its newline came in the same read",
    function()
      local srv = H.server("echo")
      local res = H.run([==[
        local mw = require "moonwire"
        local c = mw.AsyncTcpConnection.new(arg[1])
        c.maxPackageSize = 1024
        c.onConnect = function(conn) conn:send(string.rep("L", 2000)) end
        c.onMessage = function(conn, data) print("MESSAGE", #data); conn:close() end
        c.onError = function(_, code) print("ERROR", code) end
        c.onClose = function() print("CLOSED") end
        c:connect()
      ]==], { "text://127.0.0.1:" .. srv.port })
      H.assert_exit(res, 0)
      assert.same({ "ERROR\t7", "CLOSED" }, res.lines)
    end)

  it("frame:// header declaring more than the default maxPackageSize (10 MiB) is refused at once",
    function()
      local srv = H.server("huge", { "--framing", "frame", "--limit", 64 * 1024 * 1024 })
      local res = H.run(HUGE_CLIENT, { "frame://127.0.0.1:" .. srv.port, "default" })
      H.assert_exit(res, 0)
      assert.equal(3, #res.lines, H.describe(res))
      assert.matches("^ERROR\ttrue\t7\t.*maxPackageSize", res.lines[1])
      assert.equal("CLOSED\t0\t1\t1\tCLOSED", res.lines[2])
      local growth = tonumber(res.lines[3]:match("^GROWTH_KB\t(%-?%d+)$"))
      if not H.valgrind then
        assert.is_true(growth < 24 * 1024, "peak memory grew by " .. growth .. " KiB")
      end
    end)
end)

-- Issue 11 item 14: a last line without its newline, and a send that would be two lines.
describe("text:// line boundaries (issue 11 item 14)", function()
  after_each(H.cleanup)

  -- Prints every message, error and the close; sends nothing of its own.
  local TRACE_CLIENT = [==[
local mw = require "moonwire"
local c = mw.AsyncTcpConnection.new(arg[1])
c.onConnect = function() print("CONNECT") end
c.onMessage = function(conn, data) print("MSG " .. string.format("%q", data):gsub("\\\n", "\\n")) end
c.onError = function(_, code, msg) print("ERROR", code, msg) end
c.onClose = function(conn) print("CLOSED", conn:getStatus()) end
c:connect()
]==]

  for _, case in ipairs {
    { "a last line without a newline", "first\\nlast line", { q "first", q "last line" } },
    { "a last line ending in CR only (the CR dropped as for any line)", "last\\r", { q "last" } },
    { "nothing after the last newline (no extra empty message)", "one\\n", { q "one" } },
  } do
    it("delivers " .. case[1] .. " when the server closes, before onClose", function()
      local srv = H.server("echo", { "--framing", "raw" })
      local p = H.start(TRACE_CLIENT, { "text://127.0.0.1:" .. srv.port })
      p:wait_line("^CONNECT$")
      srv:wait_line("^CONNECT 1$")
      srv:send("SEND 1 " .. case[2] .. "\nCLOSE 1\n")
      local code = p:wait(10)
      local res = { code = code, signal = p.signal, lines = p.lines, stdout = p:stdout_text(),
                    stderr = p:stderr_text(), timed_out = code == nil }
      H.assert_exit(res, 0)
      local want = { "CONNECT" }
      for _, m in ipairs(case[3]) do want[#want + 1] = m end
      want[#want + 1] = "CLOSED\tCLOSED"
      assert.same(want, res.lines)
    end)
  end

  it("refuses send() of a message with a newline (false, onError SEND_FAIL, nothing sent); send(data, true) writes raw bytes",
    function()
      local srv = H.server("echo", { "--framing", "line" })
      local res = H.run([==[
        local mw = require "moonwire"
        local c = mw.AsyncTcpConnection.new(arg[1])
        local n = 0
        c.onConnect = function(conn)
          print("SEND", conn:send("a\nb"))
          print("RAW", conn:send("x\ny\n", true))
          print("SEND", conn:send("ok"))
        end
        c.onMessage = function(conn, data)
          n = n + 1
          print("MSG", data)
          if n == 3 then conn:close() end
        end
        c.onError = function(_, code, msg) print("ERROR", code == mw.errors.SEND_FAIL, msg) end
        c.onClose = function() print("CLOSED") end
        c:connect()
      ]==], { "text://127.0.0.1:" .. srv.port })
      H.assert_exit(res, 0)
      assert.same({
        "SEND\tfalse", "RAW\ttrue", "SEND\ttrue",
        "ERROR\ttrue\tsend text://127.0.0.1:" .. srv.port .. ": message has a newline at byte 2 of 3: "
          .. "text:// sends one line per message, nothing sent (send(data, true) writes raw bytes)",
        "MSG\tx", "MSG\ty", "MSG\tok", "CLOSED",
      }, res.lines)
      assert.equal("LINE 1 x", (srv:wait_line("^LINE")))
      assert.equal("LINE 1 y", (srv:wait_line("^LINE")))
      assert.equal("LINE 1 ok", (srv:wait_line("^LINE")))
      -- the server got the raw bytes and the one line, nothing of "a\nb"
      srv:wait_line("^CLOSE 1 " .. #"x\ny\nok\n" .. "$")
    end)

  it("frame:// send(data, true) writes raw bytes too (no length prefix added)", function()
    local srv = H.server("echo", { "--framing", "frame" })
    local res = H.run([==[
      local mw = require "moonwire"
      local c = mw.AsyncTcpConnection.new(arg[1])
      c.onConnect = function(conn)
        print("RAW", conn:send(string.pack(">I4", 4 + 3) .. "abc", true))
      end
      c.onMessage = function(conn, data) print("MSG", data); conn:close() end
      c.onError = function(_, code, msg) print("ERROR", code, msg) end
      c.onClose = function() print("CLOSED") end
      c:connect()
    ]==], { "frame://127.0.0.1:" .. srv.port })
    H.assert_exit(res, 0)
    assert.same({ "RAW\ttrue", "MSG\tabc", "CLOSED" }, res.lines)
    assert.equal("FRAME 1 3 abc", (srv:wait_line("^FRAME")))
  end)
end)
