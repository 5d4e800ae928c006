-- Issue 11, point 12: a callback failing on every message used to print a full traceback
-- each time (one bad decode in a flood: 1 M tracebacks, 4 M lines). The same error (same
-- message, same callback kind) repeated within a second is printed in full once, then
-- counted: one summary line a second, and one for the last window at exit. A different
-- error is printed at once.
local H = require "spec.support.helper"

local function lines_of(text)
  local r = {}
  for l in text:gmatch("[^\n]+") do r[#r + 1] = l end
  return r
end

-- The summary lines of stderr: { count = n, secs = s, what = "...", msg = "..." }.
local function summaries(stderr)
  local r = {}
  for _, l in ipairs(lines_of(stderr)) do
    local n, secs, what, msg = l:match(
      "^moonwire: %.%.%. ([%d,]+) more of the same error in the last ([%d.]+)s %(error in (%S+): (.*)%)$")
    if n then
      assert.is_not_nil(n:match("^%d%d?%d?$") or n:match("^%d%d?%d?,%d%d%d[%d,]*$"), l)
      r[#r + 1] = { count = tonumber((n:gsub(",", ""))), secs = tonumber(secs), what = what,
                    msg = msg, raw = n }
    end
  end
  return r
end

local function sum(list, msg)
  local n = 0
  for _, s in ipairs(list) do if not msg or s.msg:find(msg, 1, true) then n = n + s.count end end
  return n
end

-- Runs a script whose onMessage counts, closes after the n-th of the server's n lines,
-- and then runs `fail` (Lua source; n is the count so far): the script's lines 1-6 are
-- fixed, `fail` starts on line 7.
local function flood(n, fail)
  local srv = H.server("burst", { "--count", n })
  return H.run([==[
      local mw = require "moonwire"
      local n = 0
      local c = mw.AsyncTcpConnection.new(arg[1])
      c.onMessage = function(conn, data)
        n = n + 1
        if n == tonumber(arg[2]) then print("ALL", n); conn:close() end
]==] .. fail .. [==[
      end
      c:connect()
    ]==], { "text://127.0.0.1:" .. srv.port, n }, { timeout = 60 })
end

describe("error floods (issue 11 point 12)", function()
  after_each(H.cleanup)

  it("100,000 messages that all fail in onMessage: one traceback, a few summary lines that count the rest", function()
    local N = 100000
    local res = flood(N, [[
        error("bad decode")
    ]])
    H.assert_exit(res, 0)
    assert.same({ "ALL\t" .. N }, res.lines)
    assert.equal(1, H.count_text(res.stderr, "stack traceback:"), res.stderr:sub(1, 3000))
    assert.equal(1, H.count_text(res.stderr, "moonwire: error in onMessage: " .. H.tmpdir() .. "/script.lua:7: bad decode\nstack traceback:"))
    local list = summaries(res.stderr)
    assert.is_true(#list >= 1, res.stderr)
    assert.equal(N - 1, sum(list), res.stderr)     -- every one counted, the last window flushed at exit
    for _, s in ipairs(list) do
      assert.equal("onMessage", s.what)
      assert.is_not_nil(s.msg:find("/script%.lua:7: bad decode$"), s.msg)
      assert.is_true(s.secs <= 1 + 0.5 * H.slow, res.stderr)
    end
    -- the traceback, the error line and the summaries: a handful of lines, not 400,000
    assert.is_true(#lines_of(res.stderr) < 10 + #list, res.stderr)
    assert.is_true(#list < 30, res.stderr)
    -- a count of thousands is written with separators
    local big = list[#list].count >= 1000 and list[#list] or nil
    for _, s in ipairs(list) do if s.count >= 1000 then big = s end end
    assert.is_not_nil(big, res.stderr)
    assert.is_not_nil(big.raw:find(",", 1, true), big.raw)
  end)

  it("two different errors alternating are both printed in full, and each is counted on its own", function()
    local N = 20000
    local res = flood(N, [[
        if n % 2 == 0 then error("even failure") end
        error("odd failure")
    ]])
    H.assert_exit(res, 0)
    assert.equal(2, H.count_text(res.stderr, "stack traceback:"), res.stderr:sub(1, 3000))
    assert.equal(1, H.count_text(res.stderr, "moonwire: error in onMessage: " .. H.tmpdir() .. "/script.lua:8: odd failure\nstack traceback:"))
    assert.equal(1, H.count_text(res.stderr, "moonwire: error in onMessage: " .. H.tmpdir() .. "/script.lua:7: even failure\nstack traceback:"))
    local list = summaries(res.stderr)
    assert.equal(N / 2 - 1, sum(list, "odd failure"), res.stderr)
    assert.equal(N / 2 - 1, sum(list, "even failure"), res.stderr)
  end)

  it("a flood longer than a second gets one summary line a second; after a quiet second the error is printed in full again", function()
    local res = H.run([==[
      local mw = require "moonwire"
      local t0 = mw.now()
      local n, t = 0, nil
      local function fail() error("still failing") end
      t = mw.Timer.add(0.001, function()
        n = n + 1
        if mw.now() - t0 > 2.6 then
          mw.Timer.del(t)
          print("FLOOD", n)
          -- the same error again after a quiet 1.2 s: in full, with its traceback
          mw.Timer.add(1.2, function() print("AGAIN"); fail() end, nil, false)
        end
        fail()
      end)
    ]==], {}, { timeout = 30 })
    H.assert_exit(res, 0)
    local n = tonumber(res.lines[1]:match("^FLOOD\t(%d+)$"))
    assert.is_not_nil(n, H.describe(res))
    assert.equal(2, H.count_text(res.stderr, "stack traceback:"), res.stderr)
    local list = summaries(res.stderr)
    -- 2.6 s of errors: a line at about 1 s, about 2 s, and the rest when it went quiet
    assert.is_true(#list >= 2 and #list <= 4, res.stderr)
    assert.equal(n - 1, sum(list), res.stderr)
    for i = 1, #list - 1 do   -- whole windows: a second each (a busy machine may tick late)
      assert.is_true(list[i].secs >= 1 and list[i].secs <= 1 + 0.5 * H.slow, res.stderr)
    end
  end)

  it("the same message from two kinds of callback is two errors", function()
    local res = H.run([==[
      local mw = require "moonwire"
      local function fail() error("shared helper failed") end
      local w = mw.Worker.new()
      w.onWorkerStart = function() fail() end
      mw.Timer.add(0.01, function() fail() end, nil, false)
      mw.Worker.runAll()
    ]==])
    H.assert_exit(res, 0)
    assert.equal(2, H.count_text(res.stderr, "stack traceback:"), res.stderr)
    assert.equal(1, H.count_text(res.stderr, "moonwire: error in onWorkerStart: " .. H.tmpdir() .. "/script.lua:2: shared helper failed\n"))
    assert.equal(1, H.count_text(res.stderr, "moonwire: error in timer: " .. H.tmpdir() .. "/script.lua:2: shared helper failed\n"))
    assert.same({}, summaries(res.stderr))
  end)
end)
