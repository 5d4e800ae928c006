-- Issue 11 point 1, websocket keepalive: websocketPingInterval / websocketPingTimeout
-- at many ratios (timeout a multiple of the interval, equal, smaller, larger) against
-- a live server (Python `websockets`, spec/servers/ws_py_peer.py, answers every ping),
-- a deaf one (spec/servers/ws_raw_peer.py --pong never), one that goes deaf midway
-- (the raw peer stops reading), and busy streams (spec/servers/ws_counter.py; the raw
-- peer trickling frames without answering pings). No false timeout ever; a quiet
-- peer is failed within interval + timeout of its last byte; Timer callbacks go on
-- after a timeout and the process does not end while a one-shot is pending.
--
-- The cases of one kind run side by side, one moonwire process each.
local H = require "spec.support.helper"
local W = require "spec.support.ws_raw"

local TOL = 0.2 * H.slow   -- scheduling slack on a loaded machine

-- The client: arg = url, interval, timeout, late, tick, ending. It prints every event
-- with its time since the script started; a one-shot Timer at `late` prints LATE,
-- deletes the ticker (tick = 1: a persistent Timer every 0.1 s printing TICK) and
-- closes the connection (ending "destroy": at once, for a peer too busy to answer a
-- close frame).
local CLIENT = [[
local mw = require "moonwire"
local url, interval, timeout = arg[1], tonumber(arg[2]), tonumber(arg[3])
local late, tick, ending = tonumber(arg[4]), arg[5] == "1", arg[6] or "close"
local t0 = mw.now()
local function at() return ("%.3f"):format(mw.now() - t0) end
local c = mw.AsyncTcpConnection.new(url)
c.websocketPingInterval = interval
c.websocketPingTimeout = timeout
local open, pongs, msgs = false, 0, 0
c.onWebSocketConnect = function() open = true; print("WSCONNECT " .. at()) end
c.onWebSocketPong = function() pongs = pongs + 1; print("PONG " .. at()) end
c.onMessage = function() msgs = msgs + 1; print("MSG " .. at()) end
c.onError = function(_, code, m) print("ERROR " .. code .. " " .. at() .. " " .. m) end
c.onClose = function() open = false; print("CLOSE " .. at()) end
local ticker = tick and mw.Timer.add(0.1, function() print("TICK " .. at()) end)
mw.Timer.add(late, function()
  print("LATE " .. at())
  if ticker then mw.Timer.del(ticker) end
  if open then c[ending](c) end
end, false)
c:connect()
]]

local function ratio(cs) return ("%g/%g"):format(cs[1], cs[2]) end

-- Starts one client per case against url (url may be a function of the case);
-- returns the cases with .res set, once every client ended.
local function run_cases(cases, url, late, tick)
  local path = H.write_script(CLIENT, "keepalive.lua")
  for _, cs in ipairs(cases) do
    local l = type(late) == "function" and late(cs) or late
    cs.late = l
    cs.proc = H.start(nil, { type(url) == "function" and url(cs) or url, cs[1], cs[2], l,
      tick and 1 or 0, cs.ending or "close" }, { path = path })
  end
  for _, cs in ipairs(cases) do cs.res = H.result(cs.proc, cs.late + 8) end
  return cases
end

-- The times (a list) of the lines that start with `event`, and the first one.
local function times(res, event)
  local r = {}
  for _, l in ipairs(res.lines) do
    local t = l:match("^" .. event .. " ([%d.]+)")
    if t then r[#r + 1] = tonumber(t) end
  end
  return r, r[1]
end

local function check(cond, cs, fmt, ...)
  if not cond then
    error(("%s: " .. fmt):format(ratio(cs), ...) .. "\n" .. H.describe(cs.res), 2)
  end
end

-- Exited 0 by itself, after the one-shot Timer ran, the connection closed after it.
local function check_lifecycle(cs)
  local res = cs.res
  check(not res.timed_out and res.code == 0 and res.signal == 0, cs, "expected exit code 0")
  H.assert_clean(res)
  local _, late = times(res, "LATE")
  check(late and late >= cs.late - 0.01, cs, "the one-shot Timer at %gs did not run", cs.late)
  check(res.elapsed >= cs.late, cs, "the process ended after %.3fs, before its Timer at %gs",
    res.elapsed, cs.late)
  local closes = times(res, "CLOSE")
  check(#closes == 1, cs, "expected one CLOSE, got %d", #closes)
  return late, closes[1]
end

-- Pongs came every interval from connect to the end.
local function check_pongs(cs, until_t)
  local _, open = times(cs.res, "WSCONNECT")
  check(open, cs, "no WSCONNECT")
  local pongs = times(cs.res, "PONG")
  check(#pongs >= 2, cs, "only %d pongs", #pongs)
  check(pongs[1] - open <= cs[1] + TOL, cs, "first pong %.3fs after connect", pongs[1] - open)
  for i = 2, #pongs do
    check(pongs[i] - pongs[i - 1] <= cs[1] + TOL, cs, "%.3fs between pong %d and %d",
      pongs[i] - pongs[i - 1], i - 1, i)
  end
  check(until_t - pongs[#pongs] <= cs[1] + TOL, cs, "last pong at %.3f, the run ended at %.3f",
    pongs[#pongs], until_t)
end

local function check_no_error(cs)
  local errs = H.grep(cs.res.lines, "^ERROR")
  check(#errs == 0, cs, "unexpected %s", errs[1])
end

-- Timeout a multiple of the interval (the ping and the pong wait then expire in one
-- loop iteration), equal, smaller, larger.
local RATIOS = { { 0.2, 0.2 }, { 0.2, 0.4 }, { 0.25, 0.5 }, { 0.25, 1 }, { 0.5, 1 },
                 { 0.4, 0.2 }, { 0.3, 0.1 } }

local function copy(list)
  local r = {}
  for i, cs in ipairs(list) do r[i] = { cs[1], cs[2] } end
  return r
end

describe("websocket keepalive (issue 11 point 1)", function()
  after_each(H.cleanup)

  it("against a live server: no TIMEOUT at any ratio, a pong every interval, the one-shot Timer still runs", function()
    local srv = H.spawn({ H.python, "-u", H.src .. "/spec/servers/ws_py_peer.py" }, { name = "ws_py_peer.py" })
    local _, port = srv:wait_line("^PORT (%d+)$", 10)
    for _, cs in ipairs(run_cases(copy(RATIOS), "ws://127.0.0.1:" .. port .. "/echo", 2.2)) do
      check_no_error(cs)
      local late = check_lifecycle(cs)
      check_pongs(cs, late)
    end
  end)

  it("against a deaf server: TIMEOUT within interval + timeout, Timers go on after it, no early exit", function()
    local srv = W.peer { "--pong", "never" }
    local cases = run_cases(copy(RATIOS), srv.url, function(cs) return cs[1] + cs[2] + 0.6 end, true)
    for _, cs in ipairs(cases) do
      local errs = H.grep(cs.res.lines, "^ERROR")
      check(#errs == 1, cs, "expected one ERROR, got %d", #errs)
      local code, t, msg = errs[1]:match("^ERROR (%d+) ([%d.]+) (.*)$")
      check(code == "8" and msg == ("websocket %s: no pong or data within %gs after a ping"):format(srv.url, cs[2]),
        cs, "expected TIMEOUT, got %s", errs[1])
      local _, open = times(cs.res, "WSCONNECT")
      local after = tonumber(t) - open
      check(after >= cs[1] + cs[2] - 0.02 and after <= cs[1] + cs[2] + TOL, cs,
        "TIMEOUT %.3fs after connect, expected %gs", after, cs[1] + cs[2])
      local late, closed = check_lifecycle(cs)
      check(closed >= tonumber(t) and closed < late, cs, "CLOSE at %.3f, TIMEOUT at %s", closed, t)
      local ticks, n = times(cs.res, "TICK"), 0
      for _, tk in ipairs(ticks) do if tk > tonumber(t) then n = n + 1 end end
      check(n >= math.floor((late - tonumber(t)) / 0.1) - 2, cs, "%d ticks in the %.3fs after the TIMEOUT",
        n, late - tonumber(t))
    end
  end)

  it("against a server that stops reading: TIMEOUT within interval + timeout of the last pong", function()
    local cases = { { 0.2, 1 }, { 0.25, 0.5 }, { 0.3, 0.1 } }
    local path = H.write_script(CLIENT, "keepalive.lua")
    for _, cs in ipairs(cases) do
      cs.srv = W.peer()
      cs.late = 2.6
      cs.proc = H.start(nil, { cs.srv.url, cs[1], cs[2], cs.late, 0 }, { path = path })
    end
    for _, cs in ipairs(cases) do
      for _ = 1, 3 do cs.proc:wait_line("^PONG ", 5) end
      W.command(cs.srv, "DO 1 noread")
    end
    for _, cs in ipairs(cases) do
      cs.res = H.result(cs.proc, cs.late + 8)
      local errs = H.grep(cs.res.lines, "^ERROR")
      check(#errs == 1 and errs[1]:find("no pong or data within", 1, true), cs, "expected one TIMEOUT")
      local t = tonumber(errs[1]:match("^ERROR %d+ ([%d.]+)"))
      local pongs = times(cs.res, "PONG")
      local quiet = t - pongs[#pongs]
      check(quiet >= cs[2] - 0.02 and quiet <= cs[1] + cs[2] + TOL, cs,
        "TIMEOUT %.3fs after the last pong, expected %g to %gs", quiet, cs[2], cs[1] + cs[2])
      check_lifecycle(cs)
    end
  end)

  it("during a busy stream: no TIMEOUT, messages and pongs keep coming", function()
    local counter = H.spawn({ H.python, "-u", H.src .. "/spec/servers/ws_counter.py" }, { name = "ws_counter.py" })
    local _, port = counter:wait_line("^PORT (%d+)$", 10)
    -- pings never answered, but a frame byte every 10 ms: data counts as an answer
    local trickle = W.peer { "--pong", "never", "--then", "trickle:0.01:\\x81\\x01x" }
    local cases = { { 0.25, 0.5, stream = "count" }, { 0.2, 0.2, stream = "count" }, { 0.5, 1, stream = "count" },
                    { 0.2, 0.4, stream = "trickle", ending = "destroy" },
                    { 0.1, 0.1, stream = "trickle", ending = "destroy" } }
    run_cases(cases, function(cs)
      return cs.stream == "count" and ("ws://127.0.0.1:%d/count/200/100000"):format(port) or trickle.url
    end, 2.2)
    for _, cs in ipairs(cases) do
      check_no_error(cs)
      local late = check_lifecycle(cs)
      if cs.stream == "count" then check_pongs(cs, late) end
      local msgs = times(cs.res, "MSG")
      check(#msgs >= 20, cs, "only %d messages", #msgs)
      for i = 2, #msgs do
        check(msgs[i] - msgs[i - 1] <= TOL, cs, "%.3fs between message %d and %d", msgs[i] - msgs[i - 1], i - 1, i)
      end
      check(late - msgs[#msgs] <= TOL, cs, "last message at %.3f, the run ended at %.3f", msgs[#msgs], late)
    end
  end)
end)
