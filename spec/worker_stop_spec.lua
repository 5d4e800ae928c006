-- Issue 11, point 15: onWorkerStop runs exactly once on every way the loop ends: by
-- itself (nothing left active), Worker.stopAll(), SIGINT, SIGTERM; not twice when
-- stopAll is called from onWorkerStop or a signal comes during it. A script whose top
-- level fails never started its workers (they start from the loop): no onWorkerStop.
local H = require "spec.support.helper"

-- A worker that prints START and STOP (calling stopAll again from onWorkerStop), with
-- `body` run in onWorkerStart.
local function worker(body)
  return [==[
    local mw = require "moonwire"
    local w = mw.Worker.new()
    w.onWorkerStart = function()
      print("START")
]==] .. body .. [==[
    end
    w.onWorkerStop = function(wk)
      print("STOP", wk == w)
      mw.Worker.stopAll()            -- already stopping: no second run
    end
    mw.Worker.runAll()
  ]==]
end

local function assert_once(lines)
  assert.same({ "STOP\ttrue" }, H.grep(lines, "^STOP"))
end

describe("onWorkerStop (issue 11 point 15)", function()
  after_each(H.cleanup)

  it("runs once when the loop ends by itself", function()
    local res = H.run(worker [[
      mw.Timer.add(0.01, function() print("LAST TIMER") end, nil, false)
    ]])
    H.assert_exit(res, 0)
    assert.same({ "START", "LAST TIMER", "STOP\ttrue" }, res.lines)
    assert.equal("", res.stderr)
  end)

  it("runs once on Worker.stopAll() despite a live timer", function()
    local res = H.run(worker [[
      mw.Timer.add(0.01, function() end)
      mw.Timer.add(0.02, function() print("STOPALL"); mw.Worker.stopAll() end, nil, false)
    ]])
    H.assert_exit(res, 0)
    assert.same({ "START", "STOPALL", "STOP\ttrue" }, res.lines)
  end)

  for _, sig in ipairs { "sigint", "sigterm" } do
    it("runs once on " .. sig:upper(), function()
      local p = H.start(worker [[
        mw.Timer.add(0.01, function() end)
        print("READY")
      ]])
      p:wait_line("^READY$", 10)
      p:kill(sig)
      local code = p:wait(10)
      assert.equal(0, code, p:describe())
      assert_once(p.lines)
      assert.equal("", p:stderr_text())
    end)
  end

  it("runs once when a signal comes during it (a runaway onWorkerStop is interrupted)", function()
    local p = H.start([==[
      local mw = require "moonwire"
      local w = mw.Worker.new()
      w.onWorkerStart = function()
        mw.Timer.add(0.01, function() end)
        mw.Timer.add(0.02, function() mw.Worker.stopAll() end, nil, false)
      end
      w.onWorkerStop = function()
        print("STOP")
        while true do end
      end
      mw.Worker.runAll()
    ]==])
    p:wait_line("^STOP$", 10)
    p:kill("sigterm")
    local code = p:wait(5)
    assert.equal(0, code, p:describe())
    assert.same({ "STOP" }, p:grep("^STOP"))
    assert.is_not_nil(p:stderr_text():find("moonwire: error in onWorkerStop: [^\n]*interrupted\nstack traceback:"),
      p:describe())
  end)

  it("does not run when the top level fails: the workers never started", function()
    local res = H.run([==[
      local mw = require "moonwire"
      local w = mw.Worker.new()
      w.onWorkerStart = function() print("START") end
      w.onWorkerStop = function() print("STOP") end
      mw.Worker.runAll()
      error("top level fails")
    ]==])
    assert.equal(1, res.code, H.describe(res))
    assert.same({}, res.lines)
    assert.is_not_nil(res.stderr:find("top level fails", 1, true), res.stderr)
  end)

  it("runs once under lua5.4 (the C module) when Worker.runAll's loop ends by itself", function()
    if H.sanitized then
      pending("the module of the sanitizer build is not loadable by a plain lua5.4")
      return
    end
    local p = H.spawn({ "/usr/bin/lua5.4", "-e", [==[
      package.cpath = os.getenv("MW_SPEC_BUILD") .. "/lua/?.so;" .. package.cpath
      local mw = require "moonwire"
      local w = mw.Worker.new()
      w.onWorkerStart = function()
        print("START")
        mw.Timer.add(0.01, function() print("LAST TIMER") end, nil, false)
      end
      w.onWorkerStop = function() print("STOP", true) end
      mw.Worker.runAll()
      print("RETURNED")
    ]==] }, { name = "lua5.4", env = { MW_SPEC_BUILD = H.build } })
    p:close_stdin()
    local code = p:wait(10)
    assert.equal(0, code, p:describe())
    assert.same({ "START", "LAST TIMER", "STOP\ttrue", "RETURNED" }, p.lines)
  end)
end)
