-- Issue 2 (build): the core is also a Lua C module, build/lua/moonwire.so, that a stock
-- lua5.4 can `require`: the same API, with Worker.runAll() running the loop itself.
local H = require "spec.support.helper"

describe("moonwire as a C module under lua5.4", function()
  after_each(H.cleanup)

  it("require 'moonwire' gives the API and runs a text:// exchange to the end", function()
    if H.sanitized then
      -- an ASan-built module cannot load into an uninstrumented lua5.4; build/ runs this
      pending("the module of the sanitizer build is not loadable by a plain lua5.4")
      return
    end
    local srv = H.server("echo")
    package.cpath = H.build .. "/lua/?.so;" .. package.cpath
    local mw = require "moonwire"
    assert.equal("string", type(mw.version))
    assert.equal(1, mw.errors.CONNECT_FAIL)
    local got, events = {}, {}
    local c = mw.AsyncTcpConnection.new("text://127.0.0.1:" .. srv.port)
    c.onConnect = function(conn) events[#events + 1] = "connect"; conn:send("hello"); conn:send("module") end
    c.onMessage = function(conn, data)
      got[#got + 1] = data
      if #got == 2 then conn:close() end
    end
    c.onClose = function() events[#events + 1] = "close" end
    local ticks = 0
    mw.Timer.add(0.01, function() ticks = ticks + 1 end, nil, false)
    c:connect()
    local t0 = mw.now()
    mw.Worker.runAll() -- not hosted: runs the loop until nothing is active
    assert.same({ "hello", "module" }, got)
    assert.same({ "connect", "close" }, events)
    assert.equal(1, ticks)
    assert.equal("CLOSED", c:getStatus())
    assert.is_true(mw.now() - t0 < 10)
    srv:wait_line("^LINE 1 module$")
  end)
end)
