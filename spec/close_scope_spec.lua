-- Issue 12 point 5: a connection is a to-be-closed value. `local c <close> = ...` closes
-- it, as close() does (WebSocket code 1000), when the scope ends, by an error too; the
-- error leaving the scope is never taken for data to send.
local H = require "spec.support.helper"

local function ws_peer()
  local p = H.spawn({ H.python, "-u", H.src .. "/spec/servers/ws_py_peer.py" }, { name = "ws_py_peer.py" })
  local _, port = p:wait_line("^PORT (%d+)$", 10)
  p.url = "ws://127.0.0.1:" .. port
  return p
end

describe("<close> on a connection (issue 12 point 5)", function()
  after_each(H.cleanup)

  it("an error leaving the scope closes with 1000 after what was sent, and sends nothing of the error", function()
    local srv = ws_peer()
    local res = H.run([==[
      local mw = require "moonwire"
      local c = mw.AsyncTcpConnection.new(arg[1] .. "/echo")
      c.onWebSocketConnect = function(conn)
        local ok, err = pcall(function()
          local scoped <close> = conn
          conn:send("last words")
          error("boom")
        end)
        print("LEFT", ok, tostring(err):match("boom"), conn:getStatus())
      end
      c.onClose = function(conn) print("CLOSED", conn:getStatus()) end
      c.onError = function(_, code, msg) print("ERROR", code, msg) end
      c:connect()
    ]==], { srv.url })
    H.assert_clean(res)
    assert.same({ "LEFT\tfalse\tboom\tCLOSING" }, H.grep(res.lines, "^LEFT"))
    assert.same({ "CLOSED\tCLOSED" }, H.grep(res.lines, "^CLOSED"))
    srv:wait_line("^CLOSE 1000 %-$", 10)
    assert.equal(1, #srv:grep("^MSG "), "only the message sent before the error")
    assert.same({ "MSG text 10" }, { (srv:grep("^MSG ")[1]:match("^MSG text 10")) })
  end)

  it("a block's connection that was never connected ends with the block: the process exits", function()
    local srv = ws_peer()
    local res = H.run([==[
      local mw = require "moonwire"
      do
        local c <close> = mw.AsyncTcpConnection.new(arg[1] .. "/echo")
        c.onClose = function(conn) print("CLOSED", conn:getStatus()) end
        c:connect()
        print("IN", c:getStatus())
      end
    ]==], { srv.url })
    H.assert_clean(res)
    assert.same({ "IN\tCONNECTING", "CLOSED\tCLOSED" }, res.lines)
  end)
end)
