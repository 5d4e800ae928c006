-- Issue 14, the reconnect policy (conn.reconnect): against a flapping server
-- (spec/servers/flap.py: accepts and closes, stops listening for a while, answers 503
-- with Retry-After, stays up long enough to reset the backoff, then answers 401), the
-- sequence of delays onReconnect sees, the reasons, that onWebSocketConnect ran again
-- after each success, and why the policy stops; the attempts limit, close() and
-- cancelReconnect() during the wait, the option's errors.
local H = require "spec.support.helper"

local function flap(...)
  local p = H.peer("flap.py", { ... })
  p.url = "ws://127.0.0.1:" .. p.port .. "/"
  return p
end

-- arg[1] URL, arg[2] the policy (a Lua expression), arg[3] extra code (optional).
local BOT = [[
local mw = require "moonwire"
local c = mw.AsyncTcpConnection.new(arg[1])
c.reconnect = load("return " .. arg[2])()
local opens = 0
c.onWebSocketConnect = function(c) opens = opens + 1 print("OPEN " .. opens) end
c.onMessage = function(c, m) print("MSG " .. m) end
c.onError = function(c, code, msg) print("ERR " .. code .. " " .. msg) end
c.onClose = function() print("CLOSE") end
c.onReconnect = function(c, attempt, delay, reason)
  print(("RECONNECT %d %.3f %s"):format(attempt, delay, reason))
end
if arg[3] then load(arg[3])(c) end
c:connect()
]]

describe("the reconnect policy", function()
  after_each(H.cleanup)

  it("follows a flapping server: backoff, refusals, Retry-After, a reset, then a 401 stops it", function()
    local srv = flap("open:1001:0", "status:503:1", "open-down:1012:0", "open:1000:1.6", "status:401")
    local p = H.start(BOT, { srv.url, "{ min = 0.2, max = 1.5, factor = 2, jitter = 0 }" })
    p:wait_line("^OPEN 1$", 10)
    p:wait_line("^MSG hello 1$")
    -- the server went away: attempt 1 after min
    p:wait_line("^RECONNECT 1 0%.200 the connection was closed by the peer$")
    -- 503 with Retry-After: 1 (below max): the server's delay
    p:wait_line("^ERR 5 websocket handshake with " .. srv.url:gsub("%p", "%%%0") .. " failed: HTTP/1.1 503 Nope %(Retry%-After: 1%)$")
    p:wait_line("^RECONNECT 2 1%.000 ")
    p:wait_line("^OPEN 2$")
    -- then it stops listening and closes: the refusals back off 0.8, 1.5 (max)
    srv:wait_line("^DOWN$")
    p:wait_line("^RECONNECT 3 0%.800 the connection was closed by the peer$")
    p:wait_line("^RECONNECT 4 1%.500 connect " .. srv.url:gsub("%p", "%%%0") .. ": connection refused$")
    srv:send("UP\n")
    srv:wait_line("^UP$")
    -- a connection that stays up for max seconds resets the backoff
    p:wait_line("^OPEN 3$", 10)
    p:wait_line("^RECONNECT 1 0%.200 the connection was closed by the peer$", 10)
    -- 401: not retried; onError says why, then onClose, and the program ends
    local res = H.result(p, 20)
    H.assert_exit(res, 0)
    local tail = {}
    for i = #res.lines - 2, #res.lines do tail[#tail + 1] = res.lines[i] end
    assert.truthy(tail[1]:find("^ERR 5 websocket handshake with .* failed: HTTP/1.1 401 Nope$"), tail[1])
    assert.truthy(tail[2]:find("^ERR 5 reconnect " .. srv.url:gsub("%p", "%%%0")
      .. ": stopped: not retried after: websocket handshake with .* failed: HTTP/1.1 401 Nope$"), tail[2])
    assert.equal("CLOSE", tail[3])
    -- onWebSocketConnect ran again after each success, and nothing after the stop
    assert.equal(3, #H.grep(res.lines, "^OPEN "))
    assert.equal(5, #H.grep(res.lines, "^RECONNECT "))
    assert.equal(6, #H.grep(res.lines, "^CLOSE$"))
  end)

  it("stops after `attempts`, each wait at least its delay; no spin against a port that refuses", function()
    local srv = flap()
    srv:kill("sigkill")
    H.run_until(function() return srv.exited end, 5)
    local t0 = H.now()
    local res = H.run(BOT, { srv.url, "{ min = 0.05, factor = 2, jitter = 0, attempts = 3 }" }, { timeout = 20 })
    H.assert_exit(res, 0)
    local r = H.grep(res.lines, "^RECONNECT ")
    assert.same({ "RECONNECT 1 0.050 connect " .. srv.url .. ": connection refused",
                  "RECONNECT 2 0.100 connect " .. srv.url .. ": connection refused",
                  "RECONNECT 3 0.200 connect " .. srv.url .. ": connection refused" }, r)
    assert.equal("ERR 1 reconnect " .. srv.url .. ": stopped after 3 attempts; the last: connect " .. srv.url
      .. ": connection refused", res.lines[#res.lines - 1])
    assert.equal(4, #H.grep(res.lines, "^CLOSE$"))
    assert.is_true(H.now() - t0 >= 0.35)
  end)

  it("jitter takes up to its share off the delay, never more", function()
    local srv = flap()
    srv:kill("sigkill")
    H.run_until(function() return srv.exited end, 5)
    local res = H.run(BOT, { srv.url, "{ min = 0.02, max = 0.02, jitter = 0.5, attempts = 12 }" }, { timeout = 20 })
    H.assert_exit(res, 0)
    local seen = {}
    for _, l in ipairs(H.grep(res.lines, "^RECONNECT ")) do
      local d = tonumber(l:match("^RECONNECT %d+ (%S+)"))
      assert.is_true(d >= 0.0099 and d <= 0.0201, l)
      seen[#seen + 1] = d
    end
    assert.equal(12, #seen)
    table.sort(seen)
    assert.is_true(seen[#seen] > seen[1], "all delays equal: no jitter")
  end)

  it("close() and cancelReconnect() in onReconnect stop it; retry decides", function()
    local srv = flap()
    srv:kill("sigkill")
    H.run_until(function() return srv.exited end, 5)
    for _, how in ipairs { "c:close()", "c:cancelReconnect()", "c:destroy()" } do
      local res = H.run(BOT, { srv.url, "true", "local c = ... c.onReconnect = function(c, a) print('RECONNECT ' .. a) " .. how .. " end" })
      H.assert_exit(res, 0)
      assert.same({ "RECONNECT 1" }, H.grep(res.lines, "^RECONNECT"))
      assert.equal(1, #H.grep(res.lines, "^CLOSE$"))
    end
    -- retry(code, msg, status) says no: stopped with its reason
    local res = H.run(BOT, { srv.url, "{ retry = function(code, msg, status) print('RETRY?', code, status) return false end }" })
    H.assert_exit(res, 0)
    assert.same({ "RETRY?\t1\tnil" }, H.grep(res.lines, "^RETRY%?"))
    assert.equal("ERR 1 reconnect " .. srv.url .. ": stopped: not retried after: connect " .. srv.url
      .. ": connection refused", res.lines[#res.lines - 1])
  end)

  it("a close the script asked for is not retried; a reConnect() in onClose wins", function()
    local srv = flap("open:1000:5", "open:1000:5")
    local res = H.run(BOT, { srv.url, "true", "local c = ... c.onMessage = function(c) c:close() end" })
    H.assert_exit(res, 0)
    assert.same({}, H.grep(res.lines, "^RECONNECT"))
    srv = flap("open:1001:0", "open:1000:5")
    res = H.run(BOT, { srv.url, "{ min = 5 }", [[local c = ... local n = 0
      c.onClose = function(c) n = n + 1 print('CLOSE') if n == 1 then c:reConnect(0) end end
      c.onMessage = function(c, m) print('MSG ' .. m) if m == 'hello 2' then c:close() end end]] })
    H.assert_exit(res, 0)
    assert.same({}, H.grep(res.lines, "^RECONNECT"))   -- the script's reConnect(0), not the policy's 5 s
    assert.equal(1, #H.grep(res.lines, "^MSG hello 2$"))
  end)

  it("examples/reconnect_bot.lua subscribes again after each reconnect and stops at a 4xx", function()
    local srv = flap("open:1001:0", "open:1001:0", "status:403")
    local res = H.run(nil, { srv.url, "quotes" }, { path = H.src .. "/examples/reconnect_bot.lua", timeout = 20 })
    H.assert_exit(res, 0)
    assert.equal(2, #H.grep(res.lines, "^connected to " .. srv.url:gsub("%p", "%%%0") .. ": subscribing to quotes$"))
    assert.equal(2, #H.grep(res.lines, "^reconnect #%d in "))
    assert.truthy(res.lines[#res.lines - 1]:find("^error: reconnect .*: stopped: not retried after: .*403"), res.lines[#res.lines - 1])
  end)

  it("a hot reload that changes the policy applies from the next attempt", function()
    local R = require "spec.support.reload"
    local srv = flap()
    srv:kill("sigkill")
    H.run_until(function() return srv.exited end, 5)
    local function bot(v, policy)
      return ([[
local mw = require "moonwire"
local c = mw.AsyncTcpConnection.new("%s", { name = "bot" })
c.reconnect = %s
c.onReconnect = function(c, attempt, delay) print(("%s RECONNECT %%d %%.3f"):format(attempt, delay)) end
c.onError = function() end
c:connect()
]]):format(srv.url, policy, v)
    end
    local p = R.start(bot("v1", "{ min = 0.3, factor = 1, jitter = 0 }"))
    p:wait_line("^v1 RECONNECT 2 0%.300$", 10)
    R.replace(p.path, bot("v2", "{ min = 0.05, max = 0.05, jitter = 0 }"))
    p:kill("sighup")
    R.wait_reloaded(p)
    -- the new policy and callback from the next attempt on; the count goes on
    local _, n = p:wait_line("^v2 RECONNECT (%d+) 0%.050$", 10)
    assert.is_true(tonumber(n) >= 3)
    assert.equal(0, #p:grep("^v2 RECONNECT %d+ 0%.300$"))
    R.stop(p)
  end)

  it("bad policies fail at the assignment", function()
    local res = H.run([==[
local mw = require "moonwire"
local c = mw.AsyncTcpConnection.new("ws://127.0.0.1:1/")
for _, v in ipairs { 3, { min = 0 }, { max = -1 }, { factor = 0.5 }, { jitter = 2 }, { attempts = 0 },
                     { retry = 1 }, { mn = 1 }, { min = 2, max = 1 } } do
  print(pcall(function() c.reconnect = v end))
end
]==])
    H.assert_exit(res, 0)
    local want = { "reconnect must be true, false or a table (got number)", "reconnect.min must be >= 0.01 (seconds)",
      "reconnect.max must be > 0 (seconds)", "reconnect.factor must be >= 1", "reconnect.jitter must be 0..1",
      "reconnect.attempts must be an integer >= 1 (nil: no limit)", "reconnect.retry must be a function",
      "reconnect: unknown field mn (expected min, max, factor, jitter, attempts or retry)",
      "reconnect.max must be >= reconnect.min" }
    for i, w in ipairs(want) do
      assert.truthy(res.lines[i]:find("^false\t.*script.lua:%d+: " .. (w:gsub("%p", "%%%0")) .. "$"), res.lines[i])
    end
  end)
end)
