-- Issue 2, item 3: Timer.add (persistent, one-shot, args), Timer.del (also from inside
-- its own callback), Timer.delAll; and the Worker lifecycle around them.
local H = require "spec.support.helper"

describe("Timer (issue 2 item 3)", function()
  after_each(H.cleanup)

  it("persistent timer with args runs until Timer.del from its own callback; one-shot runs once",
    function()
      local res = H.run([==[
        local mw = require "moonwire"
        local Timer = mw.Timer
        local t0 = mw.now()
        local n = 0
        local id
        id = Timer.add(0.02, function(a, b, c)
          n = n + 1
          print("TICK", n, a, b, c)
          if n == 5 then print("DEL", Timer.del(id)) end
        end, { "x", 42, true })
        print("ID", math.type(id))
        local once = Timer.add(0.05, function(a) print("ONCE", a) end, { "solo" }, false)
        print("DISTINCT", once ~= id, math.type(once))
        Timer.add(0.3, function() print("ELAPSED", mw.now() - t0 >= 0.3) end, nil, false)
      ]==])
      H.assert_exit(res, 0)
      assert.same({ "ID\tinteger", "DISTINCT\ttrue\tinteger" }, { res.lines[1], res.lines[2] })
      assert.same({ "TICK\t1\tx\t42\ttrue", "TICK\t2\tx\t42\ttrue", "TICK\t3\tx\t42\ttrue",
        "TICK\t4\tx\t42\ttrue", "TICK\t5\tx\t42\ttrue" }, H.grep(res.lines, "^TICK"))
      assert.equal(1, H.count(res.lines, "^DEL"))
      assert.same({ "ONCE\tsolo" }, H.grep(res.lines, "^ONCE"))
      assert.equal("ELAPSED\ttrue", res.lines[#res.lines])
    end)

  it("a timer added after a slow script or a slow callback still waits its whole interval",
    function()
      -- The loop's cached time is stale after a long-running chunk; a timer must count
      -- from when Timer.add was called (libev: ev_now_update), not from that stale time.
      local res = H.run([==[
        local mw = require "moonwire"
        local function spin(s) local t = mw.now(); while mw.now() - t < s do end end
        spin(0.3)                                   -- a slow main chunk
        local t0 = mw.now()
        mw.Timer.add(0.2, function()
          print("TOPLEVEL", mw.now() - t0 >= 0.19)
          spin(0.3)                                 -- a slow callback
          local t1 = mw.now()
          mw.Timer.add(0.2, function() print("INCALLBACK", mw.now() - t1 >= 0.19) end, nil, false)
        end, nil, false)
      ]==])
      H.assert_exit(res, 0)
      assert.same({ "TOPLEVEL\ttrue", "INCALLBACK\ttrue" }, res.lines)
    end)

  it("keeps its rate: a 0.05 s timer ticks about 10 times in 0.5 s", function()
    local res = H.run([==[
      local mw = require "moonwire"
      local n = 0
      local id = mw.Timer.add(0.05, function() n = n + 1 end)
      mw.Timer.add(0.5, function()
        print("TICKS", n)
        mw.Timer.del(id)
      end, nil, false)
    ]==])
    H.assert_exit(res, 0)
    local n = tonumber(res.lines[1]:match("^TICKS\t(%d+)$"))
    assert.is_true(n >= 8 and n <= 10, "ticks: " .. tostring(n))
  end)

  it("a one-shot timer may delete itself; deleting twice or an unknown id is harmless", function()
    local res = H.run([==[
      local mw = require "moonwire"
      local id
      id = mw.Timer.add(0.01, function()
        print("FIRE")
        mw.Timer.del(id)
        mw.Timer.del(id)
        mw.Timer.del(123456789)
      end, nil, false)
    ]==])
    H.assert_exit(res, 0)
    assert.same({ "FIRE" }, res.lines)
  end)

  it("Timer.delAll stops every timer and the process exits with nothing active", function()
    local res = H.run([==[
      local mw = require "moonwire"
      local T = mw.Timer
      local a, b, done = 0, 0, false
      T.add(0.01, function() a = a + 1; if done then print("LATE a") end end)
      T.add(0.02, function() b = b + 1; if done then print("LATE b") end end)
      T.add(1.0, function() print("LATE one-shot") end, nil, false)
      T.add(0.15, function()
        print("DELALL", a > 0, b > 0)
        T.delAll()
        done = true
      end, nil, false)
    ]==])
    H.assert_exit(res, 0)
    assert.same({ "DELALL\ttrue\ttrue" }, res.lines)
    assert.is_true(res.elapsed < 0.9 * H.slow + 0.5, "elapsed " .. res.elapsed)
  end)

  it("Timer.delAll from inside a persistent timer's own callback", function()
    local res = H.run([==[
      local mw = require "moonwire"
      local n = 0
      mw.Timer.add(0.01, function() n = n + 1; if n == 3 then mw.Timer.delAll(); print("N", n) end end)
      mw.Timer.add(0.01, function() end)
    ]==])
    H.assert_exit(res, 0)
    assert.same({ "N\t3" }, res.lines)
  end)

  it("a timer added from a timer callback runs; args may be omitted", function()
    local res = H.run([==[
      local mw = require "moonwire"
      mw.Timer.add(0.01, function(...)
        print("OUTER", select("#", ...))
        mw.Timer.add(0.01, function() print("INNER") end, nil, false)
      end, nil, false)
    ]==])
    H.assert_exit(res, 0)
    assert.same({ "OUTER\t0", "INNER" }, res.lines)
  end)

  it("misuse raises: a non-function callback", function()
    local res = H.run([==[
      local mw = require "moonwire"
      print("BAD FN", pcall(mw.Timer.add, 1, "not a function"))
      print("BAD INTERVAL", (pcall(mw.Timer.add, "soon", function() end)))
    ]==])
    H.assert_exit(res, 0)
    assert.matches("^BAD FN\tfalse\t.+", res.lines[1])
    assert.equal("BAD INTERVAL\tfalse", res.lines[2])
  end)
end)

describe("Worker", function()
  after_each(H.cleanup)

  it("runs onWorkerStart, and Worker.stopAll ends the loop (onWorkerStop) despite a live timer",
    function()
      local res = H.run([==[
        local mw = require "moonwire"
        local w = mw.Worker.new()
        w.onWorkerStart = function(worker)
          print("START", worker == w)
          mw.Timer.add(0.01, function() end)
          mw.Timer.add(0.05, function() print("STOPALL"); mw.Worker.stopAll() end, nil, false)
        end
        w.onWorkerStop = function(worker) print("STOP", worker == w) end
        print("BEFORE RUNALL")
        mw.Worker.runAll()
      ]==])
      H.assert_exit(res, 0)
      assert.same({ "BEFORE RUNALL", "START\ttrue", "STOPALL", "STOP\ttrue" }, res.lines)
    end)
end)
