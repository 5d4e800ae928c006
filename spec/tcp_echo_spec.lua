-- Issue 2, item 1: examples/tcp_echo.lua against a real local echo server, and the
-- plain tcp:// protocol carrying arbitrary bytes.
local H = require "spec.support.helper"

describe("tcp echo (issue 2 item 1)", function()
  after_each(H.cleanup)

  it("examples/tcp_echo.lua sends lines, prints the echoes, closes and exits 0", function()
    local srv = H.server("echo")
    local url = "text://127.0.0.1:" .. srv.port
    local res = H.run(nil, { url, "one", "two words", "three" },
      { path = H.src .. "/examples/tcp_echo.lua" })
    H.assert_exit(res, 0)
    assert.same({ "> one", "> two words", "> three" }, H.grep(res.lines, "^> "))
    assert.same({ "< one", "< two words", "< three" }, H.grep(res.lines, "^< "))
    assert.equal("connected to 127.0.0.1:" .. srv.port, res.lines[1])
    assert.equal("closed after 3 of 3 echoes", res.lines[#res.lines])
    assert.equal("", res.stderr)
    -- the server saw exactly these lines (send encodes the newline), then the close
    srv:wait_line("^CONNECT 1$")
    assert.equal("LINE 1 one", (srv:wait_line("^LINE ")))
    assert.equal("LINE 1 two words", (srv:wait_line("^LINE ")))
    assert.equal("LINE 1 three", (srv:wait_line("^LINE ")))
    srv:wait_line("^CLOSE 1 " .. #"one\ntwo words\nthree\n" .. "$")
    assert.equal(0, #srv:grep("^CONNECT 2"))
  end)

  it("exits once nothing is active, without waiting for a deadline", function()
    local srv = H.server("echo")
    local res = H.run(nil, { "text://127.0.0.1:" .. srv.port },
      { path = H.src .. "/examples/tcp_echo.lua" })
    H.assert_exit(res, 0)
    assert.same({ "< hello", "< moonwire", "< bye" }, H.grep(res.lines, "^< "))
    assert.is_true(res.elapsed < 5 * H.slow, "took " .. res.elapsed .. " s")
  end)

  it("tcp:// delivers every byte (NUL, newline, 0xFF) unchanged and in order", function()
    local srv = H.server("echo", { "--framing", "raw" })
    local res = H.run([==[
      local mw = require "moonwire"
      local parts = {}
      for i = 0, 255 do parts[#parts + 1] = string.char(i) end
      local payload = string.rep(table.concat(parts), 1024)   -- 256 KiB, every byte value
      local got, chunks = {}, 0
      local c = mw.AsyncTcpConnection.new(arg[1])
      c.onConnect = function(conn)
        print("SEND", conn:send(payload))
      end
      c.onMessage = function(conn, data, kind)
        chunks = chunks + 1
        if kind ~= nil then print("KIND", kind) end
        got[#got + 1] = data
        local all = table.concat(got)
        if #all >= #payload then
          print("EQUAL", all == payload, #all)
          print("BYTES", conn.bytesRead, conn.bytesWritten)
          conn:close()
        end
      end
      c.onClose = function() print("CLOSED") end
      c:connect()
    ]==], { "tcp://127.0.0.1:" .. srv.port })
    H.assert_exit(res, 0)
    assert.same({ "SEND\ttrue", "EQUAL\ttrue\t262144", "BYTES\t262144\t262144", "CLOSED" },
      res.lines)
    srv:wait_line("^CLOSE 1 262144$")
  end)
end)
