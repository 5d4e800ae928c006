-- Issue 11 point 1, the class beyond keepalive: a stop made in the loop iteration in
-- which the stopped timer also expired, before its callback's turn. libev has then
-- already stopped the one-shot and queued its callback; the stop must cancel it.
-- Two script-visible members: cancelReconnect() (or destroy()) racing a due reconnect,
-- and Timer.del of a one-shot due in the same iteration, its userdata then collected.
local H = require "spec.support.helper"

describe("a stop in the iteration of the expiry (issue 11 point 1)", function()
  after_each(H.cleanup)

  it("cancelReconnect() or destroy() from a Timer due with the reconnect: no reconnect", function()
    local srv = H.server("echo")
    -- Each Timer is added just before its reConnect with the same delay: its deadline
    -- is a few microseconds earlier, so both fall into one iteration, the Timer first.
    local res = H.run([==[
      local mw = require "moonwire"
      local conns, cancelled = {}, 0
      for i = 1, 5 do
        local c = mw.AsyncTcpConnection.new("tcp://127.0.0.1:" .. arg[1])
        local n = 0
        c.onConnect = function(conn)
          n = n + 1
          print("CONNECT " .. i .. " " .. n)
          if n == 1 then conn:close() end
        end
        c.onClose = function(conn)
          if n ~= 1 then return end
          local how = i % 2 == 0 and "destroy" or "cancelReconnect"
          mw.Timer.add(0.1 * i, function() conn[how](conn); cancelled = cancelled + 1 end, false)
          conn:reConnect(0.1 * i)
        end
        c:connect()
        conns[i] = c
      end
      mw.Timer.add(1, function() print("CANCELLED " .. cancelled) end, false)
    ]==], { srv.port }, { timeout = 10 })
    H.assert_exit(res, 0)
    assert.same({}, H.grep(res.lines, "^CONNECT %d 2"))
    assert.equal(5, H.count(res.lines, "^CONNECT %d 1$"))
    assert.same({ "CANCELLED 5" }, H.grep(res.lines, "^CANCELLED"))
  end)

  it("Timer.del of a one-shot due in the same iteration, then a full GC: it never runs", function()
    -- Under ASan, a callback still queued for the freed timer is a use-after-free.
    local res = H.run([==[
      local mw = require "moonwire"
      local ran, deleted = 0, 0
      for i = 1, 20 do
        local victim
        mw.Timer.add(0.01 * i, function()
          if mw.Timer.del(victim) then deleted = deleted + 1 end
          collectgarbage(); collectgarbage()
        end, false)
        victim = mw.Timer.add(0.01 * i, function() ran = ran + 1 end, false)
      end
      mw.Timer.add(0.5, function() print("RAN " .. ran .. " DELETED " .. deleted) end, false)
    ]==])
    H.assert_exit(res, 0)
    assert.same({ "RAN 0 DELETED 20" }, res.lines)
  end)
end)
