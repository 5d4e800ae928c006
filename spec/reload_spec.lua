-- Issue 5, hot reload: a running moonwire takes a new version of its script while its
-- connections stay open. Every test runs the real binary against a real local server
-- (spec/servers/ws_counter.py, which streams numbered messages and prints CONNECT / MSG /
-- CLOSE lines) and counts connections and messages exactly.
local H = require "spec.support.helper"

-- Helpers -----------------------------------------------------------------------------

local R = require "spec.support.reload"
local ws_server = R.ws_counter
local PREFIX, replace, overwrite = R.PREFIX, R.replace, R.overwrite
local wait_err, wait_reloaded, count_err, stop = R.wait_err, R.wait_reloaded, R.count_err, R.stop

-- Lines "<version> <conn id> <n> ..." of the bot, in order: checks that the numbers of
-- one server connection run 1, 2, 3... with none lost or twice, and that versions
-- only move forward (`order` lists them). Returns the parsed lines.
local function check_sequence(p, order, cid)
  local rank = {}
  for i, v in ipairs(order) do rank[v] = i end
  local seen, last, vr = {}, 0, 0
  for _, l in ipairs(p.lines) do
    local v, id, n = l:match("^(%S+) (%d+) (%d+)")
    if v and rank[v] and (not cid or tonumber(id) == cid) then
      n = tonumber(n)
      assert(n == last + 1, ("message %d after %d (%s)\n%s"):format(n, last, l, p:describe()))
      assert(rank[v] >= vr, ("version %s after %s\n%s"):format(v, order[vr], p:describe()))
      last, vr = n, rank[v]
      seen[#seen + 1] = { v = v, n = n, line = l }
    end
  end
  return seen, last
end

-- Waits for a line anywhere in the output (any order with other waits).
local function wait_seen(p, pattern, timeout)
  if not H.run_until(function() return #p:grep(pattern) > 0 end, (timeout or 10) * H.slow) then
    error(("no line matching %q from %s"):format(pattern, p:describe()), 2)
  end
  return p:grep(pattern)[1]
end

local function assert_one_connection(srv)
  assert.are.equal(1, #srv:grep("^CONNECT "), srv:describe())
  assert.are.equal(0, #srv:grep("^CLOSE "), srv:describe())
end

-- A bot on one ws connection: prints "<V> <conn id> <n> <state count> <local count>"
-- for each numbered message; "reload" makes it call mw.reload().
local function bot(v)
  return ([[
local mw = require "moonwire"
local V = %q
local st = mw.state("bot", { handled = 0 })
local fresh = 0
function show(line) print(line) end   -- a global: a failed reload must not replace it
conn = mw.AsyncTcpConnection.new(arg[1], { name = "feed" })
conn.onMessage = function(c, data)
  if data == "reload" then
    mw.reload()
    print(V .. " called mw.reload")
    return
  end
  local id, n = data:match("^(%%d+) (%%d+)$")
  st.handled = st.handled + 1
  fresh = fresh + 1
  show(("%%s %%s %%s %%d %%d"):format(V, id, n, st.handled, fresh))
end
conn:connect()
]]):format(v)
end

local function start_bot(url, source, watch)
  local path = H.write_script(source, "bot.lua")
  local p = H.start(nil, { url }, { path = path, options = watch and { "--watch" } or nil })
  p.path = path
  return p
end

describe("hot reload", function()
  after_each(H.cleanup)

  -- 1 --------------------------------------------------------------------------------
  it("--watch: a rewritten onMessage handles the next message within 1 s, on the same connection (1)", function()
    local srv = ws_server()
    local p = start_bot(srv.url .. "/count/50/100000", bot("v1"), true)
    p:wait_line("^v1 1 5 ")
    -- saved as editors do (temp file renamed over the script)
    local t0 = H.now()
    replace(p.path, bot("v2"))
    p:wait_line("^v2 1 %d+ ", 1)
    local took = H.now() - t0
    assert(took < 1.0 * H.slow, ("the new code ran after %.3fs"):format(took))
    assert.matches("moonwire: reloaded " .. p.path:gsub("%p", "%%%0"), wait_reloaded(p))
    p:wait_line("^v2 1 %d+ ")
    -- written in place
    t0 = H.now()
    overwrite(p.path, bot("v3"))
    p:wait_line("^v3 1 %d+ ", 1)
    took = H.now() - t0
    assert(took < 1.0 * H.slow, ("the new code ran after %.3fs"):format(took))
    wait_reloaded(p)
    p:wait_line("^v3 1 %d+ ")
    assert.are.equal(2, count_err(p, "moonwire: reloaded"))
    local seen = check_sequence(p, { "v1", "v2", "v3" }, 1)
    assert(#seen >= 10)
    assert_one_connection(srv)
    stop(p)
    srv:wait_line("^CLOSE 1 1001 ")
  end)

  -- 3 --------------------------------------------------------------------------------
  it("mw.state keeps counting across reloads; a top-level local starts afresh (3)", function()
    local srv = ws_server()
    local p = start_bot(srv.url .. "/count/50/100000", bot("v1"), true)
    local _, prev = p:wait_line("^v1 1 %d+ (%d+) %d+$")
    p:wait_line("^v1 1 5 ")
    replace(p.path, bot("v2"))
    wait_reloaded(p)
    replace(p.path, bot("v3"))
    wait_reloaded(p)
    p:wait_line("^v3 1 %d+ %d+ 3$")
    local seen = check_sequence(p, { "v1", "v2", "v3" }, 1)
    -- the state count equals the message number throughout; the local restarts at 1
    -- with each version
    local fresh_expected, last_v = 0, nil
    for _, s in ipairs(seen) do
      local handled, fresh = s.line:match(" (%d+) (%d+)$")
      assert.are.equal(s.n, tonumber(handled), s.line)
      if s.v ~= last_v then fresh_expected, last_v = 0, s.v end
      fresh_expected = fresh_expected + 1
      assert.are.equal(fresh_expected, tonumber(fresh), s.line)
    end
    assert(prev)
    assert_one_connection(srv)
    stop(p)
  end)

  it("--watch waits for a file written in place to be closed before it reloads", function()
    local srv = ws_server()
    local p = start_bot(srv.url .. "/count/50/100000", bot("v1"), true)
    p:wait_line("^v1 1 3 ")
    local f = assert(io.open(p.path, "wb")) -- truncated: the script is empty for now
    f:write(PREFIX, bot("v2"):sub(1, 40))
    f:flush()
    -- 10 messages at 50/s: well past the 50 ms settle time
    local _, n = p:wait_line("^v1 1 (%d+) ")
    p:wait_line("^v1 1 " .. (n + 10) .. " ")
    assert.are.equal(0, count_err(p, "reload"), p:describe())
    f:write(bot("v2"):sub(41))
    f:close()
    wait_reloaded(p)
    p:wait_line("^v2 1 %d+ ")
    check_sequence(p, { "v1", "v2" }, 1)
    assert_one_connection(srv)
    stop(p)
  end)

  -- 2 --------------------------------------------------------------------------------
  local function ticker(v, interval)
    return ([[
local mw = require "moonwire"
local V = %q
local id = mw.Timer.add(%s, function(a, b) print(("%%s %%.4f %%s%%s"):format(V, mw.now(), a, b)) end, { "x", "y" })
print("ID " .. id)
local conn = mw.AsyncTcpConnection.new(arg[1], { name = "feed" })
conn.onMessage = function(c, data) print(V .. " msg " .. data) end
conn:connect()
]]):format(v, interval)
  end

  -- Tick lines "<v> <time> xy" in order.
  local function ticks(p)
    local r = {}
    for _, l in ipairs(p.lines) do
      local v, t, args = l:match("^(t%d+) (%d+%.%d+) (%S+)$")
      if v then
        assert.are.equal("xy", args)
        r[#r + 1] = { v = v, t = tonumber(t) }
      end
    end
    return r
  end

  it("a persistent timer keeps its schedule across reloads and runs the new function, never twice (2)", function()
    local srv = ws_server()
    local p = start_bot(srv.url .. "/count/50/100000", ticker("t1", 0.1), true)
    local _, id = p:wait_line("^ID (%d+)$")
    for k = 1, 3 do p:wait_line("^t1 [%d.]+ xy$") end
    for v = 2, 4 do
      replace(p.path, ticker("t" .. v, 0.1))
      wait_reloaded(p)
      p:wait_line("^ID " .. id .. "$")    -- Timer.add returned the live timer's id
      for k = 1, 6 do p:wait_line("^t" .. v .. " [%d.]+ xy$") end
    end
    local r = ticks(p)
    local order = { t1 = 1, t2 = 2, t3 = 3, t4 = 4 }
    local slack = 0.03 * H.slow
    for i = 2, #r do
      local gap = r[i].t - r[i - 1].t
      -- a second timer of the same interval would make a gap of at most 0.05 s
      assert(gap > 0.1 - slack and gap < 0.1 + slack,
        ("ticks %d and %d are %.4fs apart\n%s"):format(i - 1, i, gap, p:describe()))
      assert(order[r[i].v] >= order[r[i - 1].v], "an old function ran after the reload")
      -- the schedule is the first one: tick i is due at t0 + i * 0.1
      local drift = (r[i].t - r[1].t) - (i - 1) * 0.1
      assert(math.abs(drift) < slack, ("tick %d is off its schedule by %.4fs"):format(i, drift))
    end
    assert(#r >= 21, #r .. " ticks\n" .. p:describe())
    -- a new interval is a new timer: the old one is deleted, the new one keeps its own rate
    replace(p.path, ticker("t5", 0.05))
    wait_reloaded(p)
    local _, id5 = p:wait_line("^ID (%d+)$")
    assert.are_not.equal(id, id5)
    for k = 1, 12 do p:wait_line("^t5 [%d.]+ xy$") end
    r = ticks(p)
    local first5
    for i, t in ipairs(r) do
      if t.v == "t5" then
        first5 = first5 or i
        if i > first5 then
          local gap = t.t - r[i - 1].t
          assert(gap > 0.05 - slack / 2 and gap < 0.05 + slack, ("t5 ticks %.4fs apart"):format(gap))
        end
      else
        assert(not first5, "the 0.1 s timer still runs after it was removed")
      end
    end
    -- removed from the script: no timer left at all (the connection keeps the loop alive)
    replace(p.path, ticker("t6", 0.05):gsub("local id = [^\n]*\n", "local id = 0\n"))
    wait_reloaded(p)
    p:wait_line("^ID 0$")
    local n = #ticks(p)
    -- 10 more messages at 50/s: 0.2 s, four periods of the removed timer
    local _, m = p:wait_line("^t6 msg 1 (%d+)$")
    p:wait_line("^t6 msg 1 " .. (m + 10) .. "$")
    assert.are.equal(n, #ticks(p), "the timer still ticks after it was removed from the script")
    assert_one_connection(srv)
    stop(p)
  end)

  -- 4 --------------------------------------------------------------------------------
  -- Connections to <url>/count/20/100000/<label>, each named or not; each prints
  -- "<V> <name> <server conn id> <n>" per message and "<V> <name> closed".
  local function multi(v, list)
    local lines = { ([[
local mw = require "moonwire"
local V = %q
local function open(name, label, named)
  local c = mw.AsyncTcpConnection.new(arg[1] .. "/count/20/100000/" .. label, named and { name = name } or nil)
  c.onMessage = function(_, data) print(V .. " " .. name .. " " .. data) end
  c.onClose = function() print(V .. " " .. name .. " closed") end
  c:connect()
end]]):format(v) }
    for _, d in ipairs(list) do
      lines[#lines + 1] = ("open(%q, %q, %s)"):format(d[1], d[2], tostring(d[3] ~= false))
    end
    return table.concat(lines, "\n") .. "\n"
  end

  -- The server connection id a connection of the bot talks to (from its messages).
  local function server_id(p, v, name)
    local _, id = p:wait_line("^" .. v .. " " .. name .. " (%d+) %d+$")
    return tonumber(id)
  end

  it("a connection removed from the script is closed with 1001; one added is opened (4)", function()
    local srv = ws_server()
    local p = start_bot(srv.url, multi("v1", { { "a", "a" }, { "b", "b" } }), true)
    local a, b = server_id(p, "v1", "a"), server_id(p, "v1", "b")
    srv:wait_line("^CONNECT " .. a .. " /count/20/100000/a$")
    replace(p.path, multi("v2", { { "a", "a" } }))
    wait_reloaded(p)
    srv:wait_line("^CLOSE " .. b .. " 1001 ")
    p:wait_line("^v1 b closed$")           -- its own (old) onClose ran
    assert.are.equal(a, server_id(p, "v2", "a"))
    replace(p.path, multi("v3", { { "a", "a" }, { "c", "c" } }))
    wait_reloaded(p)
    local c = server_id(p, "v3", "c")
    srv:wait_line("^CONNECT " .. c .. " /count/20/100000/c$")
    assert.are.equal(a, server_id(p, "v3", "a"))
    check_sequence(p, { "v1", "v2", "v3" }, a) -- a lost no message and none twice
    assert.are.equal(3, #srv:grep("^CONNECT "), srv:describe())
    assert.are.same({ "CLOSE " .. b .. " 1001 going away" }, srv:grep("^CLOSE "))
    stop(p)
  end)

  it("matches by options.name when connections share a URL, else by URL and order", function()
    local srv = ws_server()
    local p = start_bot(srv.url, multi("v1", { { "x", "same" }, { "y", "same" },
      { "p", "plain", false }, { "q", "plain", false } }), true)
    local x, y = server_id(p, "v1", "x"), server_id(p, "v1", "y")
    local pp, q = server_id(p, "v1", "p"), server_id(p, "v1", "q")
    -- declared in the other order: the names keep each callback on its own connection
    -- (matching by order would swap x and y); the unnamed ones match in order
    replace(p.path, multi("v2", { { "y", "same" }, { "x", "same" },
      { "p", "plain", false }, { "q", "plain", false } }))
    wait_reloaded(p)
    assert.are.equal(x, server_id(p, "v2", "x"))
    assert.are.equal(y, server_id(p, "v2", "y"))
    assert.are.equal(pp, server_id(p, "v2", "p"))
    assert.are.equal(q, server_id(p, "v2", "q"))
    assert.are.equal(4, #srv:grep("^CONNECT "))
    assert.are.equal(0, #srv:grep("^CLOSE "))
    -- x removed by name: exactly x's connection closes; of two unnamed ones with one
    -- URL, the first declared keeps the first opened, the other is closed
    replace(p.path, multi("v3", { { "y", "same" }, { "p", "plain", false } }))
    wait_reloaded(p)
    srv:wait_line("^CLOSE " .. x .. " 1001 ")
    srv:wait_line("^CLOSE " .. q .. " 1001 ")
    assert.are.equal(y, server_id(p, "v3", "y"))
    assert.are.equal(pp, server_id(p, "v3", "p"))
    assert.are.equal(2, #srv:grep("^CLOSE "))
    assert.are.equal(4, #srv:grep("^CONNECT "))
    for _, id in ipairs { x, y, pp, q } do check_sequence(p, { "v1", "v2", "v3" }, id) end
    stop(p)
  end)

  it("a text:// connection removed from the script is closed; one added is opened", function()
    local echo = H.server("echo", { "--framing", "line" })
    local url = "text://127.0.0.1:" .. echo.port
    local function lines_bot(v, names)
      local src = { ([[
local mw = require "moonwire"
local V = %q
local function open(name)
  local c = mw.AsyncTcpConnection.new(arg[1], { name = name })
  c.onConnect = function(c) c:send(V .. " hello from " .. name) end
  c.onMessage = function(_, data) print(V .. " " .. name .. " got " .. data) end
  c:connect()
  return c
end]]):format(v) }
      for _, n in ipairs(names) do src[#src + 1] = ("open(%q)"):format(n) end
      return table.concat(src, "\n") .. "\n"
    end
    local p = start_bot(url, lines_bot("v1", { "a", "b" }), true)
    wait_seen(p, "^v1 a got v1 hello from a$")
    wait_seen(p, "^v1 b got v1 hello from b$")
    replace(p.path, lines_bot("v2", { "b", "c" }))
    wait_reloaded(p)
    wait_seen(p, "^v2 c got v2 hello from c$")   -- only c, the new one, connected (and said hello)
    echo:wait_line("^CLOSE %d+ %d+$")
    assert.are.equal(3, #echo:grep("^CONNECT "))
    assert.are.equal(1, #echo:grep("^CLOSE "))
    assert.are.equal(3, #echo:grep("^LINE "))
    local a_id = echo:grep("^LINE %d+ v1 hello from a$")[1]:match("^LINE (%d+)")
    assert.matches("^CLOSE " .. a_id .. " ", echo:grep("^CLOSE ")[1])
    stop(p)
  end)

  -- 5 --------------------------------------------------------------------------------
  -- Waits until the bot has handled `k` more messages (at 50/s: k * 20 ms), by the
  -- version v; returns the last number.
  local function more(p, v, k)
    local _, n = p:wait_line("^" .. v .. " 1 (%d+) ")
    p:wait_line("^" .. v .. " 1 " .. (tonumber(n) + k) .. " ")
    return tonumber(n) + k
  end

  it("a syntax error in the new script leaves the old version running; the next good save applies (5)", function()
    local srv = ws_server()
    local p = start_bot(srv.url .. "/count/50/100000", bot("v1"), true)
    p:wait_line("^v1 1 3 ")
    replace(p.path, bot("v2"):gsub("local fresh = 0", "local fresh = = 0"))
    local err = wait_err(p, "moonwire: error in reload: [^\n]+\n")
    assert.matches("bot.lua:%d+: unexpected symbol near '='", err)
    wait_err(p, "moonwire: reload of [^\n]+ failed; the running version stays\n")
    more(p, "v1", 5)
    replace(p.path, bot("v3"))
    wait_reloaded(p)
    p:wait_line("^v3 1 %d+ ")
    check_sequence(p, { "v1", "v3" }, 1)
    assert.are.equal(0, #p:grep("^v2 "))
    assert_one_connection(srv)
    stop(p)
  end)

  it("a runtime error in the new script changes nothing live and is printed with a traceback (5)", function()
    local srv = ws_server()
    local p = start_bot(srv.url .. "/count/50/100000", bot("v1"), true)
    p:wait_line("^v1 1 3 ")
    -- v2 declares a new connection and a timer, rebinds a global and a state, then fails
    local v2 = bot("v2") .. [[
local extra = mw.AsyncTcpConnection.new(arg[1] .. "/extra")
extra:connect()
mw.Timer.add(0.01, function() print("v2 tick") end)
function show(line) print("BROKEN " .. line) end
local function check_config(cfg) return cfg.missing.field end
check_config({})
]]
    replace(p.path, v2)
    local err = wait_err(p, "moonwire: error in reload: .-\n[^\n]*in main chunk\n")
    assert.matches("bot.lua:%d+: attempt to index a nil value %(field 'missing'%)", err)
    assert.matches("stack traceback:\n", err)
    assert.matches("in local 'check_config'", err)
    wait_err(p, "moonwire: reload of [^\n]+ failed; the running version stays\n")
    more(p, "v1", 10) -- 0.2 s: the extra connection would be up, the timer ticking
    assert.are.equal(0, #p:grep("v2 tick"))
    assert.are.equal(0, #p:grep("^BROKEN"))
    assert_one_connection(srv)
    -- an error raised in onWorkerStart fails the reload the same way
    replace(p.path, bot("v3") .. [[
local w = mw.Worker.new()
w.onWorkerStart = function() error("no start in v3") end
mw.Worker.runAll()
]])
    err = wait_err(p, "moonwire: error in [^\n]+\n")
    assert.matches("no start in v3", err)
    wait_err(p, "stack traceback:\n")
    wait_err(p, "moonwire: reload of [^\n]+ failed; the running version stays\n")
    more(p, "v1", 5)
    replace(p.path, bot("v4"))
    wait_reloaded(p)
    p:wait_line("^v4 1 %d+ ")
    check_sequence(p, { "v1", "v4" }, 1)
    assert_one_connection(srv)
    assert.are.equal(1, count_err(p, "moonwire: reloaded"))
    stop(p)
  end)

  -- 6 --------------------------------------------------------------------------------
  it("modules required from the script's directory are reloaded and watched too (6)", function()
    local srv = ws_server()
    local dir = H.tmpdir()
    assert(os.execute("mkdir -p '" .. dir .. "/lib'"))
    local function handler(v) return ("return { V = %q }\n"):format(v) end
    local function fmt(v)
      return ("local M = { V = %q }\nfunction M.tag(...) return table.concat({ ... }, '/') end\nreturn M\n"):format(v)
    end
    replace(dir .. "/handler.lua", handler("h1"))
    replace(dir .. "/lib/fmt.lua", fmt("f1"))
    replace(dir .. "/notes.lua", "return 'not required by the bot'\n")
    local function modbot(extra)
      return ([[
local mw = require "moonwire"
local handler = require "handler"
local fmt = require "lib.fmt"
%s
local conn = mw.AsyncTcpConnection.new(arg[1], { name = "feed" })
conn.onMessage = function(c, data)
  print(fmt.tag(handler.V, fmt.V, EXTRA or "-") .. " " .. data)
end
conn:connect()
]]):format(extra or "")
    end
    local p = start_bot(srv.url .. "/count/50/100000", modbot(), true)
    p:wait_line("^h1/f1/%- 1 3$")
    -- only the module changes (saved by rename)
    replace(dir .. "/handler.lua", handler("h2"))
    wait_reloaded(p)
    p:wait_line("^h2/f1/%- 1 %d+$")
    -- a module in a subdirectory, written in place
    overwrite(dir .. "/lib/fmt.lua", fmt("f2"))
    wait_reloaded(p)
    p:wait_line("^h2/f2/%- 1 %d+$")
    -- a file of the directory that the bot does not require: no reload
    replace(dir .. "/notes.lua", "return 'still not required'\n")
    local _, n = p:wait_line("^h2/f2/%- 1 (%d+)$")
    p:wait_line("^h2/f2/%- 1 " .. (n + 10) .. "$")
    assert.are.equal(2, count_err(p, "moonwire: reloaded"))
    -- a module that does not compile: the old modules and code stay
    replace(dir .. "/handler.lua", "return { V = }\n")
    wait_err(p, "moonwire: error in reload: error loading module 'handler'")
    wait_err(p, "handler.lua:1: unexpected symbol")
    wait_err(p, "failed; the running version stays\n")
    _, n = p:wait_line("^h2/f2/%- 1 (%d+)$")
    p:wait_line("^h2/f2/%- 1 " .. (n + 5) .. "$")
    replace(dir .. "/handler.lua", handler("h3"))
    wait_reloaded(p)
    p:wait_line("^h3/f2/%- 1 %d+$")
    -- a module first required by a failed version is watched: fixing it applies
    replace(dir .. "/extra.lua", "EXTRA = = 'e1'\n")
    replace(p.path, modbot('require "extra"'))
    wait_err(p, "extra.lua:1: unexpected symbol")
    wait_err(p, "failed; the running version stays\n")
    _, n = p:wait_line("^h3/f2/%- 1 (%d+)$")
    p:wait_line("^h3/f2/%- 1 " .. (n + 5) .. "$")
    replace(dir .. "/extra.lua", "EXTRA = 'e1'\n")
    wait_reloaded(p)
    p:wait_line("^h3/f2/e1 1 %d+$")
    replace(dir .. "/extra.lua", "EXTRA = 'e2'\n")
    wait_reloaded(p)
    p:wait_line("^h3/f2/e2 1 %d+$")
    assert.are.equal(5, count_err(p, "moonwire: reloaded"))
    check_sequence(p, { "h1/f1/-", "h2/f1/-", "h2/f2/-", "h3/f2/-", "h3/f2/e1", "h3/f2/e2" }, 1)
    assert_one_connection(srv)
    stop(p)
  end)

  -- 7 --------------------------------------------------------------------------------
  it("SIGHUP and mw.reload() reload as a file change does; without --watch a save alone does not (7)", function()
    local srv = ws_server()
    local p = start_bot(srv.url .. "/count/50/100000", bot("v1"), false)
    p:wait_line("^v1 1 3 ")
    replace(p.path, bot("v2"))
    more(p, "v1", 10)                      -- 0.2 s later: no reload without --watch
    assert.are.equal(0, count_err(p, "reload"))
    p:kill("sighup")
    wait_reloaded(p)
    p:wait_line("^v2 1 %d+ ")
    more(p, "v2", 3)
    -- mw.reload() from a callback: the callback finishes in the old code, the reload
    -- runs from the loop after it
    overwrite(p.path, bot("v3"))
    srv:send("SEND * reload\n")
    p:wait_line("^v2 called mw.reload$")
    wait_reloaded(p)
    p:wait_line("^v3 1 %d+ ")
    -- mw.reload() when nothing changed: the same version again, still one connection
    srv:send("SEND * reload\n")
    p:wait_line("^v3 called mw.reload$")
    wait_reloaded(p)
    local _, handled, fresh = p:wait_line("^v3 1 %d+ (%d+) (%d+)$")
    assert.are.equal("1", fresh)          -- the script ran again
    check_sequence(p, { "v1", "v2", "v3" }, 1)
    assert.are.equal(3, count_err(p, "moonwire: reloaded"))
    assert_one_connection(srv)
    stop(p)
  end)

  it("keeps connections declared in onWorkerStart; onWorkerReload runs after the reload", function()
    local srv = ws_server()
    local function worker_bot(v)
      return ([[
local mw = require "moonwire"
local V = %q
local worker = mw.Worker.new()
local conn
worker.onWorkerStart = function(w)
  print(V .. " onWorkerStart")
  conn = mw.AsyncTcpConnection.new(arg[1])
  conn.onWebSocketConnect = function() print(V .. " connected") end
  conn.onMessage = function(c, data) print(V .. " " .. data) end
  conn:connect()
  mw.Timer.add(0.05, function() end)
end
worker.onWorkerReload = function(w)
  -- the new code's connection object already holds the live connection
  print(V .. " onWorkerReload " .. conn:getStatus() .. " " .. tostring(conn:getRemotePort()))
end
worker.onWorkerStop = function() print(V .. " onWorkerStop") end
mw.Worker.runAll()
]]):format(v)
    end
    local p = start_bot(srv.url .. "/count/50/100000", worker_bot("w1"), true)
    p:wait_line("^w1 connected$")
    p:wait_line("^w1 1 3$")
    replace(p.path, worker_bot("w2"))
    p:wait_line("^w2 onWorkerStart$")
    local line = wait_reloaded(p)
    p:wait_line("^w2 onWorkerReload ESTABLISHED " .. srv.port .. "$")
    p:wait_line("^w2 1 %d+$")
    replace(p.path, worker_bot("w3"))
    p:wait_line("^w3 onWorkerReload ESTABLISHED " .. srv.port .. "$")
    p:wait_line("^w3 1 %d+$")
    assert.are.equal(0, #p:grep("^w[23] connected$"))  -- no new handshake
    assert.are.equal(0, #p:grep("^w1 onWorkerReload")) -- the old worker is not called
    check_sequence(p, { "w1", "w2", "w3" }, 1)
    assert_one_connection(srv)
    stop(p)
    assert.are.same({ "w3 onWorkerStop" }, p:grep("onWorkerStop"))
    assert(line)
  end)

  -- 8 --------------------------------------------------------------------------------
  -- The bot under load: checks every number against the last one in mw.state; each
  -- version carries a 200 KB constant, so a version kept alive by mistake shows in
  -- memory; after a reload it collects garbage and prints its memory.
  local PAD = ("x"):rep(200 * 1024)
  local function load_bot(v)
    return H.MEM_LUA .. ([[
local mw = require "moonwire"
local V = %q
local PAD = %q
local st = mw.state("load", { last = 0, count = 0, bad = 0 })
local mine = 0
local conn = mw.AsyncTcpConnection.new(arg[1], { name = "feed" })
conn.onMessage = function(c, data)
  local n = tonumber(data:match("^%%d+ (%%d+)$"))
  if not n then
    print(("DONE %%s %%s %%d %%d %%d"):format(V, data:match("^END (%%d+)$"), st.last, st.count, st.bad))
    c:close()
    return
  end
  if n ~= st.last + 1 then
    st.bad = st.bad + 1
    print(("BAD %%s %%d after %%d"):format(V, n, st.last))
  end
  st.last = n
  st.count = st.count + 1
  mine = mine + 1
  if mine == 1 then print(("FIRST %%s %%d"):format(V, n)) end
end
conn:connect()
local w = mw.Worker.new()
w.onWorkerReload = function()
  collectgarbage("collect")
  collectgarbage("collect")
  print(("MEM %%s %%d %%d %%d"):format(V, mem("VmRSS"), math.floor(collectgarbage("count")), #PAD))
end
mw.Worker.runAll()
]]):format(v, PAD)
  end

  it("under 10,000 messages/s, 20 reloads in a row lose none, handle none twice, and keep memory flat (8)", function()
    local srv = ws_server()
    -- under ASan, freed memory waits in a quarantine (256 MiB by default) and RSS grows
    -- with every free; without one, RSS measures what is live, as in a normal build
    local env
    if H.sanitized then
      env = { ASAN_OPTIONS = (os.getenv("ASAN_OPTIONS") or "detect_leaks=1") .. ":quarantine_size_mb=0" }
    end
    local path = H.write_script(load_bot("v0"), "bot.lua")
    local p = H.start(nil, { srv.url .. "/count/10000/1000000" }, { path = path, options = { "--watch" }, env = env })
    p.path = path
    p:wait_line("^FIRST v0 1$")
    local t0 = H.now()
    local rss, heap = {}, {}
    for k = 1, 23 do
      local v = "v" .. k
      if k % 2 == 1 then replace(p.path, load_bot(v)) else overwrite(p.path, load_bot(v)) end
      wait_reloaded(p)
      local _, r, lua_kb = p:wait_line("^MEM " .. v .. " (%d+) (%d+) " .. #PAD .. "$")
      p:wait_line("^FIRST " .. v .. " %d+$")   -- the new code is handling the stream
      rss[k], heap[k] = H.vmrss(p.pid), tonumber(lua_kb)
      assert(tonumber(r) > 0)
    end
    srv:send("STOP 1\n")
    local _, sent = srv:wait_line("^END 1 (%d+)$")
    local elapsed = H.now() - t0
    local _, total, last, count, bad = p:wait_line("^DONE v23 (%d+) (%d+) (%d+) (%d+)$", 30)
    assert.are.equal(sent, total)
    assert.are.equal(sent, last)            -- the last number handled is the last sent
    assert.are.equal(sent, count)           -- and every one of them exactly once
    assert.are.equal("0", bad, table.concat(p:grep("^BAD "), "\n"))
    assert.are.equal(0, #p:grep("^BAD "))
    assert(tonumber(sent) >= 9000 * elapsed * 0.9,
      ("only %s messages in %.1fs"):format(sent, elapsed))
    assert.are.equal(23, count_err(p, "moonwire: reloaded"))
    -- memory: the first 3 reloads warm up (buffers at their working size, Lua's GC
    -- pace); after 20 more, VmRSS has grown by less than 2 MiB (a leaked version
    -- alone is over 200 KiB, 20 of them 4 MiB) and the Lua heap after a full
    -- collection by less than 100 KiB (half a leaked version)
    local grow = rss[23] - rss[3]
    if not H.valgrind then -- valgrind holds 20 MB of freed blocks: RSS grows with every free
      assert(grow < 2048, ("VmRSS grew by %d KiB over 20 reloads: %s"):format(grow, table.concat(rss, " ")))
    end
    local hgrow = heap[23] - heap[3]
    assert(hgrow < 100, ("the Lua heap grew by %d KiB over 20 reloads: %s"):format(hgrow, table.concat(heap, " ")))
    print(("\n  [load] %s messages in %.1fs; VmRSS KiB %s; Lua heap KiB %s"):format(sent, elapsed,
      table.concat(rss, " "), table.concat(heap, " ")))
    srv:wait_line("^CLOSE 1 1000 ")        -- the bot closed it after END
    assert.are.equal(1, #srv:grep("^CONNECT "))
    assert.are.equal(1, #srv:grep("^CLOSE "))
    stop(p)
  end)

  -- 9 --------------------------------------------------------------------------------
  it("examples/hot_reload works as its README says (9)", function()
    local srv = ws_server()
    local dir = H.tmpdir() .. "/hot_reload"
    assert(os.execute("mkdir -p '" .. dir .. "' && cp '" .. H.src .. "/examples/hot_reload/bot.lua' '"
      .. H.src .. "/examples/hot_reload/handler.lua' '" .. dir .. "/'"))
    local p = H.start(nil, { srv.url .. "/echo" }, { path = dir .. "/bot.lua", options = { "--watch" } })
    p:wait_line("^connected to ws://")
    p:wait_line('^got "ping 1" %(1 received so far%)$')
    -- the edit the README suggests, saved as an editor does
    local f = assert(io.open(dir .. "/handler.lua"))
    local src = f:read("a")
    f:close()
    local new = src:gsub('return %("got %%q %(%%d received so far%)"%):format%(data, stats.received%)',
      'return ("echo #%%d: %%s"):format(stats.received, data)')
    assert.are_not.equal(src, new)
    f = assert(io.open(dir .. "/handler.lua.tmp", "wb"))
    f:write(new)
    f:close()
    assert(os.rename(dir .. "/handler.lua.tmp", dir .. "/handler.lua"))
    wait_reloaded(p)
    p:wait_line("^reloaded %(1 so far%); still on the same connection: ESTABLISHED$")
    local _, k = p:wait_line("^echo #(%d+): ping %d+$")
    p:wait_line("^echo #" .. (k + 1) .. ": ping " .. (k + 1) .. "$")
    -- the server got ping 1, 2, 3... once each, on one connection
    local msgs = srv:grep("^MSG ")
    for i, l in ipairs(msgs) do assert.are.equal("MSG 1 ping " .. i, l) end
    assert(#msgs >= k + 1)
    assert.are.equal(1, #p:grep("^connected to "))
    assert_one_connection(srv)
    stop(p)
  end)

  it("old code that still holds a reloaded connection sends on the live socket", function()
    local srv = ws_server()
    local function hb_bot(v)
      return ([[
local mw = require "moonwire"
local V = %q
local conn = mw.AsyncTcpConnection.new(arg[1], { name = "feed" })
conn.onWebSocketConnect = function(c)
  -- made from a callback, so not a declaration: it survives reloads with its closure
  -- and the connection object of the version that made it
  local k = 0
  mw.Timer.add(0.02, function() k = k + 1; c:send("hb " .. k) end)
end
conn.onMessage = function(c, data) print(V .. " " .. data) end
conn:connect()
]]):format(v)
    end
    local p = start_bot(srv.url .. "/echo", hb_bot("v1"), true)
    p:wait_line("^v1 hb 3$")
    replace(p.path, hb_bot("v2"))
    wait_reloaded(p)
    local _, k = p:wait_line("^v2 hb (%d+)$")   -- sent by v1's timer, echoed to v2's onMessage
    replace(p.path, hb_bot("v3"))
    wait_reloaded(p)
    local _, k3 = p:wait_line("^v3 hb (%d+)$")
    p:wait_line("^v3 hb " .. (k3 + 5) .. "$")
    local msgs = srv:grep("^MSG ")
    for i, l in ipairs(msgs) do assert.are.equal("MSG 1 hb " .. i, l) end
    assert(#msgs >= tonumber(k3) + 5 and tonumber(k) > 3)
    assert_one_connection(srv)
    stop(p)
  end)
end)
