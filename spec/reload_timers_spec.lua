-- Hot reload and the timers a script declares: a one-shot that fired (or was deleted)
-- stays spent across reloads, a new one runs once; Timer.del on a declaration during a
-- reload is part of the transaction. Each test runs the real binary and reloads it with
-- SIGHUP; the script's own persistent timer is the clock that tells when a timer that
-- must not run would have run.
local H = require "spec.support.helper"
local R = require "spec.support.reload"

local start = R.start

-- SIGHUP, then waits for the outcome on stderr and for the "gen <G>" line the new run
-- printed at its top level; returns G.
local function reload(p, expect_fail)
  p:kill("sighup")
  if expect_fail then
    R.wait_err(p, "moonwire: reload of [^\n]+ failed; the running version stays\n")
  else
    R.wait_reloaded(p)
  end
  local _, g = p:wait_line("^gen (%S+)$")
  return g
end

-- Waits for k lines "<what> <G>" from the script's clock, a persistent timer. The first
-- tick after a reload may be due before the reload (the timer keeps its schedule, and a
-- late one is re-armed from the time it ran), the second is due after it, and each next
-- one at least a period later: the k-th is due at least (k - 2) periods after the reload,
-- and libev runs due timers in the order of their due times.
local function ticks(p, what, g, k)
  for _ = 1, k do p:wait_line("^" .. what .. " " .. g:gsub("%p", "%%%0") .. "$") end
end

-- Waits for a line anywhere in the output (timers of different intervals, started at
-- different times, may print in either order when the process is slow, as under valgrind).
local function seen(p, pattern)
  if not H.run_until(function() return #p:grep(pattern) > 0 end, 10 * H.slow) then
    error(("no line matching %q from %s"):format(pattern, p:describe()), 2)
  end
end

local function count(p, pattern) return #p:grep(pattern) end

-- The top of each bot: its generation G ("<version>/g<n>", n counting runs), printed
-- as "gen <G>" (string.format's %q takes the version).
local GEN = [[
local mw = require "moonwire"
local st = mw.state("gen", { n = 0 })
st.n = st.n + 1
local G = %q .. "/g" .. st.n
print("gen " .. G)
]]

describe("hot reload of timers", function()
  after_each(H.cleanup)

  -- A bot with a one-shot `once` (0.05 s) at top level and `login` (0.04 s) in
  -- onWorkerStart, a one-shot `late` (0.15 s) that `once` deletes the first time it runs,
  -- optionally a one-shot `fresh` (0.06 s), and the clock: a persistent 0.1 s timer.
  -- Every run prints "gen <V>/g<n>"; every timer prints its name and that.
  local function bot(v, opts)
    opts = opts or {}
    return ([[
local mw = require "moonwire"
local st = mw.state("gen", { n = 0, deleted = false })
st.n = st.n + 1
local G = %q .. "/g" .. st.n
print("gen " .. G)
local late
%s
late = mw.Timer.add(0.15, function() print("late " .. G) end, nil, false)
%s
mw.Timer.add(0.1, function() print("tick " .. G) end)
local w = mw.Worker.new()
w.onWorkerStart = function()
  mw.Timer.add(0.04, function() print("login " .. G) end, nil, false)
end
mw.Worker.runAll()
%s
]]):format(v,
      opts.once == false and "" or [=[
mw.Timer.add(0.05, function()
  print("once " .. G)
  if not st.deleted then      -- before `late` fires: it was declared after this one
    st.deleted = true
    print("del late " .. tostring(mw.Timer.del(late)))
  end
end, nil, false)]=],
      opts.fresh and 'mw.Timer.add(0.06, function() print("fresh " .. G) end, nil, false)' or "",
      opts.fail and 'error("v-bad does not start")' or "")
  end

  it("a one-shot that fired or was deleted is not run again by a reload; a new one runs once", function()
    local p = start(bot("v1"))
    p:wait_line("^gen v1/g1$")
    local g = "v1/g1"
    seen(p, "^login v1/g1$")
    seen(p, "^once v1/g1$")
    seen(p, "^del late true$")
    ticks(p, "tick", g, 2)
    -- two reloads of the same script: `once`, `login` (declared in onWorkerStart) and
    -- `late` (deleted before it fired) stay spent; the clock keeps going
    for _ = 1, 2 do
      g = reload(p)
      ticks(p, "tick", g, 4)               -- 0.2 s after the reload: past 0.15 s
    end
    assert.are.equal("v1/g3", g)
    assert.are.equal(1, count(p, "^once "), p:describe())
    assert.are.equal(1, count(p, "^login "), p:describe())
    assert.are.equal(0, count(p, "^late "), p:describe())
    -- a one-shot the running version does not have is new: it runs, once
    R.replace(p.path, bot("v2", { fresh = true }))
    g = reload(p)
    seen(p, "^fresh v2/g4$")
    ticks(p, "tick", g, 4)
    g = reload(p)
    ticks(p, "tick", g, 4)
    assert.are.equal(1, count(p, "^fresh "), p:describe())
    -- a reload that fails changes no record: `fresh` is still spent after it
    R.replace(p.path, bot("v-bad", { fresh = true, fail = true }))
    reload(p, true)
    ticks(p, "tick", g, 2)                 -- the running version's clock
    -- a version without `once` drops its record: declared again later, it is new
    R.replace(p.path, bot("v3", { once = false, fresh = true }))
    g = reload(p)
    ticks(p, "tick", g, 4)
    R.replace(p.path, bot("v4", { fresh = true }))
    g = reload(p)
    seen(p, "^once v4/g8$")
    ticks(p, "tick", g, 4)
    assert.are.same({ "once v1/g1", "once v4/g8" }, p:grep("^once "))
    assert.are.same({ "fresh v2/g4" }, p:grep("^fresh "))
    assert.are.same({ "login v1/g1" }, p:grep("^login "))
    assert.are.same({}, p:grep("^late "))
    assert.are.equal(1, count(p, "^del late"))
    assert.are.equal(6, R.count_err(p, "moonwire: reloaded"))
    assert.are.equal(1, R.count_err(p, "v%-bad does not start"))
    R.stop(p)
  end)

  -- Timer.del(id) on what the same run declared: on the first run the timer never
  -- starts, and a reload must not start it either; on a live timer it is part of the
  -- reload's transaction (a failed reload leaves the timer running).
  local function del_bot(v, extra)
    return (GEN .. [[
local o = mw.Timer.add(0.05, function() print("one-shot ran " .. G) end, nil, false)
print("del one-shot " .. tostring(mw.Timer.del(o)) .. " " .. tostring(mw.Timer.del(o)))
local q = mw.Timer.add(0.05, function() print("persistent ran " .. G) end)
print("del persistent " .. tostring(mw.Timer.del(q)))
local a = mw.Timer.add(0.1, function() print("a " .. G) end)
mw.Timer.add(0.04, function() print("clock " .. G) end)
%s
]]):format(v, extra or "")
  end

  it("Timer.del at top level: a reload does not start the deleted timer; a failed one keeps the live one", function()
    local p = start(del_bot("v1"))
    p:wait_line("^gen v1/g1$")
    p:wait_line("^del one%-shot true false$")
    p:wait_line("^del persistent true$")
    p:wait_line("^a v1/g1$")
    local g = reload(p)
    -- the reloaded script sees what the first run saw
    p:wait_line("^del one%-shot true false$")
    p:wait_line("^del persistent true$")
    ticks(p, "clock", g, 7)                -- 0.2 s: the deleted timers would have run
    seen(p, "^a v1/g2$")
    -- a failed reload that deletes `a` before it fails: `a` keeps ticking
    R.replace(p.path, del_bot("v2", 'mw.Timer.del(a)\nerror("v2 fails")'))
    reload(p, true)
    p:wait_line("^a v1/g2$")
    p:wait_line("^a v1/g2$")
    -- a good one that deletes it: `a` stops, from the commit on
    R.replace(p.path, del_bot("v3", "mw.Timer.del(a)"))
    g = reload(p)
    local from
    for i, l in ipairs(p.lines) do if l == "gen v3/g4" then from = i end end
    ticks(p, "clock", g, 7)
    for i = from, #p.lines do
      assert(not p.lines[i]:find("^a "), ("`a` ran after the reload deleted it\n%s"):format(p:describe()))
    end
    assert.are.same({}, p:grep(" ran "))
    assert.are.equal(2, R.count_err(p, "moonwire: reloaded"))
    R.stop(p)
  end)

  -- Timer.delAll() at the top level of a reload, and Timer.del(id) on a live timer the
  -- run did not declare, are part of the transaction: a failed reload keeps every timer
  -- running; a good one withdraws the declarations made before delAll and stops the
  -- live timers at commit, but for those declared after it, which go on.
  local function delall_bot(v, before, after)
    return (GEN .. [[
%s
local clock = mw.Timer.add(0.04, function()
  print("clock " .. G)
  if not st.cb then                 -- made from a callback: not a declaration
    st.cb = mw.Timer.add(0.07, function() print("cb " .. G) end)
    print("cb id " .. st.cb)
  end
end)
print("clock id " .. clock)
%s
]]):format(v, before, after)
  end

  it("Timer.delAll at top level: a failed reload keeps every timer; a good one stops them at commit", function()
    local A = 'mw.Timer.add(0.1, function() print("a " .. G) end)'
    local p = start(delall_bot("v1", A, ""))
    p:wait_line("^gen v1/g1$")
    local _, clock_id = p:wait_line("^clock id (%d+)$")
    p:wait_line("^cb id %d+$")
    seen(p, "^a v1/g1$")
    -- deletes the callback's timer, then every timer, then fails
    R.replace(p.path, delall_bot("v2", 'print("del cb " .. tostring(mw.Timer.del(st.cb)))\nmw.Timer.delAll()',
      'error("v2 fails")'))
    reload(p, true)
    p:wait_line("^del cb true$")
    -- nothing was deleted: the old version's timers go on
    p:wait_line("^a v1/g1$")
    p:wait_line("^cb v1/g1$")
    ticks(p, "clock", "v1/g1", 2)
    -- declares `a` and two new timers, deletes everything, then declares the clock
    R.replace(p.path, delall_bot("v3", A .. [=[

local x = mw.Timer.add(0.02, function() print("x " .. G) end, nil, false)
local y = mw.Timer.add(0.03, function() print("y " .. G) end)
mw.Timer.delAll()
print("del after delAll " .. tostring(mw.Timer.del(st.cb)) .. " " .. tostring(mw.Timer.del(x)))]=], ""))
    local g = reload(p)
    p:wait_line("^del after delAll false false$")
    p:wait_line("^clock id " .. clock_id .. "$")  -- declared after delAll: the live clock
    local from
    for i, l in ipairs(p.lines) do if l == "gen " .. g then from = i end end
    ticks(p, "clock", g, 7)                      -- 0.28 s: a, cb, x and y would have run
    for i = from, #p.lines do
      assert(not p.lines[i]:find("^a ") and not p.lines[i]:find("^cb "),
        ("a timer ran after the reload deleted it\n%s"):format(p:describe()))
    end
    assert.are.same({}, p:grep("^[xy] "))
    assert.are.equal(1, R.count_err(p, "moonwire: reloaded"))
    assert.are.equal(1, R.count_err(p, "v2 fails"))
    R.stop(p)
  end)
end)
