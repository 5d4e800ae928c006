-- Worker callbacks around hot reload: each worker's onWorkerStart, onWorkerReload and
-- onWorkerStop runs through the door on its own (an error in one is printed with its
-- traceback and spares the next worker's), and a callback field takes a function or nil
-- only, checked where it is assigned.
local H = require "spec.support.helper"
local R = require "spec.support.reload"

-- Two workers; the first one's `hook` raises, the second's prints "second <hook> <n>".
-- The script reloads itself (mw.reload() from a timer) `reloads` times, then calls
-- Worker.stopAll() from a timer, unless `wait_for_signal`.
local function two_workers(hook, reloads, wait_for_signal)
  return ([[
local mw = require "moonwire"
local st = mw.state("s", { runs = 0 })
st.runs = st.runs + 1
local first, second = mw.Worker.new(), mw.Worker.new()
first.%s = function() error("first worker's %s fails") end
second.%s = function() print("second %s " .. st.runs) end
local n = 0
mw.Timer.add(0.02, function()
  n = n + 1
  if n ~= 2 then return end                     -- once per version
  if st.runs <= %d then mw.reload()
  elseif %s then print("ready")
  else mw.Worker.stopAll() end
end)
mw.Worker.runAll()
]]):format(hook, hook, hook, hook, reloads, tostring(wait_for_signal == true))
end

-- Runs the script to its exit 0 and returns the result.
local function run(source, signal)
  local path = H.write_script(source, "bot.lua")
  local p = H.start(nil, {}, { path = path })
  if signal then
    p:wait_line("^ready$")
    p:kill(signal)
  end
  local code = p:wait(20)
  local res = { code = code, signal = p.signal, stdout = p:stdout_text(), stderr = p:stderr_text(),
    lines = p.lines, timed_out = code == nil, proc = p }
  H.assert_exit(res, 0)
  return res
end

-- `n` reports "moonwire: error in <what>: bot.lua:5: first worker's <what> fails",
-- each followed by its traceback, and no error in the error handler.
local function assert_reported(res, what, n)
  local pattern = "moonwire: error in " .. what .. ": [^\n]*bot%.lua:5: first worker's "
    .. what .. " fails\nstack traceback:\n"
  local k = 0
  for _ in res.stderr:gmatch(pattern) do k = k + 1 end
  assert(k == n, ("%d reports of %s, expected %d\n%s"):format(k, what, n, H.describe(res)))
  assert.are.equal(0, H.count_text(res.stderr, "error in error handling"), H.describe(res))
end

describe("Worker callbacks", function()
  after_each(H.cleanup)

  it("an error in one worker's onWorkerReload spares the next worker's, reload after reload", function()
    local res = run(two_workers("onWorkerReload", 2))
    assert.are.same({ "second onWorkerReload 2", "second onWorkerReload 3" }, res.lines)
    assert_reported(res, "onWorkerReload", 2)
    assert.are.equal(2, H.count_text(res.stderr, "moonwire: reloaded "))
  end)

  it("an error in one worker's onWorkerStop spares the next worker's (Worker.stopAll from a callback)", function()
    local res = run(two_workers("onWorkerStop", 1))
    assert.are.same({ "second onWorkerStop 2" }, res.lines)   -- the reloaded version's workers
    assert_reported(res, "onWorkerStop", 1)
  end)

  it("an error in one worker's onWorkerStop spares the next worker's (SIGTERM)", function()
    local res = run(two_workers("onWorkerStop", 0, true), "sigterm")
    assert.are.same({ "ready", "second onWorkerStop 1" }, res.lines)
    assert_reported(res, "onWorkerStop", 1)
  end)

  it("an error in one worker's onWorkerStart spares the next worker's", function()
    local res = run(two_workers("onWorkerStart", 0))
    assert.are.same({ "second onWorkerStart 1" }, res.lines)
    assert_reported(res, "onWorkerStart", 1)
  end)

  it("a reload whose onWorkerStart raises still fails as a whole, and the next one applies", function()
    local src = two_workers("onWorkerStart", 0, true)
    local path = H.write_script(src, "bot.lua")
    local p = H.start(nil, {}, { path = path })
    p:wait_line("^second onWorkerStart 1$")
    p:wait_line("^ready$")
    p:kill("sighup")                      -- the same script: its first worker raises
    R.wait_err(p, "moonwire: error in reload: [^\n]*bot%.lua:5: first worker's onWorkerStart fails\n")
    R.wait_err(p, "moonwire: reload of [^\n]+ failed; the running version stays\n")
    R.replace(path, (src:gsub('error%("first worker.s onWorkerStart fails"%)', 'print("first starts")')))
    p:kill("sighup")
    R.wait_reloaded(p)
    p:wait_line("^ready$")
    -- the failed run stopped at the first worker (a reload's onWorkerStart declares,
    -- so it runs inside the transaction); the good one started both
    assert.are.same({ "second onWorkerStart 1", "ready", "first starts", "second onWorkerStart 3",
      "ready" }, p.lines)
    R.stop(p)
  end)

  it("onWorkerStart, onWorkerStop and onWorkerReload take a function or nil; anything else raises where it is assigned", function()
    local res = run([[
local mw = require "moonwire"
local w = mw.Worker.new()
for _, name in ipairs { "onWorkerStart", "onWorkerStop", "onWorkerReload" } do
  for _, bad in ipairs { 5, "f", {}, true } do
    local ok, err = pcall(function() w[name] = bad end)
    print(ok, err)
  end
end
w.onWorkerStart = function() print("started") end
w.onWorkerStart = nil
print(w.onWorkerStart)
w.onWorkerStart = function(worker) print("started", worker == w) mw.Worker.stopAll() end
w.onWorkerStop = function() print("stopped") end
w.name = "plain"                              -- other fields are plain data
print(type(w.onWorkerStart), w.name, rawget(w, "name"), w.count)
mw.Worker.runAll()
]])
    local expected = {}
    for _, name in ipairs { "onWorkerStart", "onWorkerStop", "onWorkerReload" } do
      for _, t in ipairs { "number", "string", "table", "boolean" } do
        expected[#expected + 1] = ("false\t%s:5: %s must be a function or nil, got %s"):format(
          res.proc.argv[#res.proc.argv], name, t)
      end
    end
    for _, l in ipairs { "nil", "function\tplain\tplain\t1", "started\ttrue", "stopped" } do
      expected[#expected + 1] = l
    end
    assert.are.same(expected, res.lines)
    -- uncaught, at top level: the script's file and line, and exit 1
    local bad = H.run([[
local mw = require "moonwire"
local worker = mw.Worker.new()
worker.onWorkerStart = 5
mw.Worker.runAll()
]])
    assert.are.equal(1, bad.code, H.describe(bad))
    assert.matches("script%.lua:3: onWorkerStart must be a function or nil, got number", bad.stderr)
    H.assert_clean(bad)
  end)
end)
