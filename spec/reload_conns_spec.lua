-- Hot reload and the connections a script declares: a declaration that gives a live
-- connection's name another URL keeps the socket and takes the URL for the next connect
-- (another protocol layer is another connection); a connection the script itself ended
-- stays ended across reloads, one that failed or that the peer closed is connected
-- again. Each test runs the real binary against local servers (spec/servers/) and
-- reloads it with SIGHUP.
local H = require "spec.support.helper"
local R = require "spec.support.reload"
local T = require "spec.support.tls"

local ws_counter, start = R.ws_counter, R.start

-- Saves `source` over the script (as editors do) and reloads with SIGHUP; waits for the
-- outcome on stderr.
local function reload(p, source, expect_fail)
  R.replace(p.path, source)
  p:kill("sighup")
  if expect_fail then
    return R.wait_err(p, "moonwire: reload of [^\n]+ failed; the running version stays\n")
  end
  return R.wait_reloaded(p)
end

local function esc(s) return (s:gsub("%p", "%%%0")) end

-- Waits for a line anywhere in the output: connections print in any order.
local function seen(p, pattern)
  if not H.run_until(function() return #p:grep(pattern) > 0 end, 10 * H.slow) then
    error(("no line matching %q from %s"):format(pattern, p:describe()), 2)
  end
end

describe("hot reload of connections", function()
  after_each(H.cleanup)

  -- One connection named "feed" to `url`. onWorkerReload prints what the new code's
  -- object reads (the URL of the next connect, the socket's status) and, when the socket
  -- is up, sends "reconnect" on it: echoed back, it makes the bot reConnect().
  local function feed_bot(v, url, ca)
    return ([[
local mw = require "moonwire"
local V = %q
local conn = mw.AsyncTcpConnection.new(%q, { name = "feed"%s })
conn.onConnect = function(c) print(V .. " connect " .. c.url) end
conn.onWebSocketConnect = function(c) print(V .. " wsconnect " .. c.url) end
conn.onMessage = function(c, data)
  print(V .. " got " .. data .. " " .. c.url)
  if data == "reconnect" then c:reConnect(0) end
end
conn:connect()
local w = mw.Worker.new()
w.onWorkerReload = function()
  print(V .. " reloaded " .. conn.url .. " " .. conn.protocol .. " " .. conn:getStatus())
  if conn:getStatus() == "ESTABLISHED" then conn:send("reconnect") end
end
mw.Worker.runAll()
]]):format(v, url, ca and (", ssl = { cafile = %q }"):format(ca) or "")
  end

  it("a new URL under the same name keeps the socket and is used from the next reConnect on, ws:// and wss://",
    function()
      local a, b = ws_counter(), ws_counter()
      local tls = T.server("ws")
      local ca = T.certs() .. "/ca.pem"
      local A, B = a.url .. "/echo", b.url .. "/echo"
      local S = "wss://localhost:" .. tls.port .. "/tls"
      local p = start(feed_bot("v1", A, ca))
      p:wait_line("^v1 connect " .. esc(A) .. "$")
      p:wait_line("^v1 wsconnect " .. esc(A) .. "$") -- the handshake is done: the reload finds it open
      a:wait_line("^CONNECT 1 /echo$")
      -- v2 names B: the socket to A stays (the message goes out on it, after the reload)
      -- and conn.url reads B, the URL of the next connect
      reload(p, feed_bot("v2", B, ca))
      p:wait_line("^v2 reloaded " .. esc(B) .. " ws ESTABLISHED$")
      a:wait_line("^MSG 1 reconnect$")
      p:wait_line("^v2 got reconnect " .. esc(B) .. "$")
      -- reConnect() goes to B
      b:wait_line("^CONNECT 1 /echo$")
      p:wait_line("^v2 connect " .. esc(B) .. "$")
      a:wait_line("^CLOSE 1 ")
      -- ws:// to wss://: the same protocol layer, TLS from the next connect on
      reload(p, feed_bot("v3", S, ca))
      p:wait_line("^v3 reloaded " .. esc(S) .. " wss ESTABLISHED$")
      b:wait_line("^MSG 1 reconnect$")
      tls:wait_line("^TLS ")
      tls:wait_line("^CONNECT /tls$")
      p:wait_line("^v3 connect " .. esc(S) .. "$")
      b:wait_line("^CLOSE 1 ")
      -- and back to ws://
      reload(p, feed_bot("v4", A, ca))
      p:wait_line("^v4 reloaded " .. esc(A) .. " ws ESTABLISHED$")
      tls:wait_line("^MSG text 9 ")
      a:wait_line("^CONNECT 2 /echo$")
      p:wait_line("^v4 connect " .. esc(A) .. "$")
      -- a URL that does not parse fails the reload, naming the line; nothing changes
      R.replace(p.path, feed_bot("v5", "ws://127.0.0.1:99999/echo", ca))
      p:kill("sighup")
      local err = R.wait_err(p, "moonwire: error in reload: [^\n]+\n")
      assert.matches('bot%.lua:3: invalid URL "ws://127%.0%.0%.1:99999/echo": invalid port "99999" %(expected 1%.%.65535%)', err)
      R.wait_err(p, "moonwire: reload of [^\n]+ failed; the running version stays\n")
      reload(p, feed_bot("v6", A, ca))
      p:wait_line("^v6 reloaded " .. esc(A) .. " ws ESTABLISHED$")
      a:wait_line("^MSG 2 reconnect$")
      a:wait_line("^CONNECT 3 /echo$")
      p:wait_line("^v6 connect " .. esc(A) .. "$")
      assert.are.same({}, p:grep("^v5 "))
      assert.are.equal(3, #a:grep("^CONNECT "), a:describe())
      assert.are.equal(1, #b:grep("^CONNECT "), b:describe())
      assert.are.equal(1, #tls:grep("^CONNECT "), tls:describe())
      assert.are.equal(4, R.count_err(p, "moonwire: reloaded"))
      R.stop(p)
    end)

  it("a declaration is the live connection's own userdata, one object for its whole life", function()
    local a = ws_counter()
    local A = a.url .. "/echo"
    -- v1 keeps its object in mw.state, and a timer made from a callback (old code,
    -- no declaration) keeps sending on it; each version prints whether its declaration
    -- is that object, and onMessage what the object reads
    local function bot(v, ping, fail)
      return ([[
local mw = require "moonwire"
local V = %q
local s = mw.state("s", {})
local conn = mw.AsyncTcpConnection.new(%q, { name = "feed" })
print(V .. " same " .. tostring(s.conn ~= nil and rawequal(s.conn, conn)))
conn.websocketPingInterval = %d
conn.onWebSocketConnect = function(c)
  print(V .. " wsconnect")
  s.timer = s.timer or mw.Timer.add(0.05, function() c:send("tick") end)
end
conn.onMessage = function(c, data)
  print(V .. " got " .. data .. " " .. ("%%g"):format(c.websocketPingInterval) .. " " .. tostring(rawequal(c, s.conn)))
end
conn:connect()
s.conn = s.conn or conn
%s
]]):format(v, A, ping, fail and 'error("broken on purpose")' or "")
    end
    local p = start(bot("v1", 0))
    p:wait_line("^v1 same false$")
    p:wait_line("^v1 wsconnect$")
    p:wait_line("^v1 got tick 0 true$")
    reload(p, bot("v2", 7))
    p:wait_line("^v2 same true$")
    -- the old timer's object is the new declaration: the new callback, the new option
    p:wait_line("^v2 got tick 7 true$")
    -- a reload that fails leaves the object as it was (v3's option and callback staged, dropped)
    reload(p, bot("v3", 9, true), true)
    p:wait_line("^v3 same true$")
    local n = #p:grep("^v2 got tick 7 true$")
    H.run_until(function() return #p:grep("^v2 got tick 7 true$") > n end, 10 * H.slow)
    assert.is_true(#p:grep("^v2 got tick 7 true$") > n, p:describe())
    assert.are.same({}, p:grep("^v3 got"))
    assert.are.same({}, p:grep("^v[23] wsconnect"))
    assert.are.equal(1, #a:grep("^CONNECT "), a:describe())
    R.stop(p)
  end)

  it("a new URL of another protocol layer is another connection (closed, opened); of the same layer, the same one",
    function()
      local a = ws_counter()
      local e = H.server("echo", { "--framing", "line" })
      local A, E = a.url .. "/echo", "text://127.0.0.1:" .. e.port
      local p = start(feed_bot("v1", A))
      p:wait_line("^v1 connect " .. esc(A) .. "$")
      -- the handshake is done (an unfinished one is dropped without a close frame)
      p:wait_line("^v1 wsconnect " .. esc(A) .. "$")
      a:wait_line("^CONNECT 1 /echo$")
      reload(p, feed_bot("v2", E))
      p:wait_line("^v2 reloaded " .. esc(E) .. " text CONNECTING$")
      a:wait_line("^CLOSE 1 1001 going away$")
      e:wait_line("^CONNECT 1$")
      p:wait_line("^v2 connect " .. esc(E) .. "$")
      -- text:// to another text:// peer: the same layer, so the same connection, which
      -- goes there at its next connect
      local e2 = H.server("echo", { "--framing", "line" })
      local E2 = "text://127.0.0.1:" .. e2.port
      reload(p, feed_bot("v3", E2))
      p:wait_line("^v3 reloaded " .. esc(E2) .. " text ESTABLISHED$")
      e:wait_line("^LINE 1 reconnect$")
      e2:wait_line("^CONNECT 1$")
      p:wait_line("^v3 connect " .. esc(E2) .. "$")
      -- and back to ws://
      reload(p, feed_bot("v4", A))
      p:wait_line("^v4 reloaded " .. esc(A) .. " ws CONNECTING$")
      e2:wait_line("^CLOSE 1 ")
      a:wait_line("^CONNECT 2 /echo$")
      p:wait_line("^v4 connect " .. esc(A) .. "$")
      assert.are.equal(2, #a:grep("^CONNECT "), a:describe())
      assert.are.equal(1, #e:grep("^CONNECT "), e:describe())
      assert.are.equal(1, #e2:grep("^CONNECT "), e2:describe())
      R.stop(p)
    end)

  -- Six named connections. c_close, c_finish, c_destroy: the script ends them with that
  -- method when the server sends "end"; c_cancel: the server closes it, its onClose
  -- reconnects in 30 s and a moment later cancels that; p_peer: the server closes it and
  -- its onClose does nothing; p_fail (text:// to a peer that resets the connection): it
  -- fails, and its onClose does nothing. onConnect is the bot's login. With `keep`, the
  -- version keeps every connection object; without, only c_close and c_cancel (the
  -- others are collected once they end), and it collects garbage once all six closed.
  local function ended_bot(v, ws, rst, opts)
    opts = opts or {}
    local names = opts.names or { "c_close", "c_finish", "c_destroy", "c_cancel", "p_peer", "p_fail" }
    local list = {}
    for _, n in ipairs(names) do list[#list + 1] = ("%q"):format(n) end
    return ([[
local mw = require "moonwire"
local V, WS, RST, KEEP = %q, %q, %q, %s
HELD = {}
local kept, weak, closed = {}, setmetatable({}, { __mode = "v" }), 0
local function open(name)
  local c = mw.AsyncTcpConnection.new(name == "p_fail" and RST or WS .. "/" .. name, { name = name })
  c.onConnect = function(c)
    print(V .. " login " .. name)
    if name == "p_fail" then c:send("hi") end
  end
  c.onMessage = function(c, data)
    if data == "end" then c[name:match("^c_(%%a+)$")](c) end
  end
  c.onError = function() print(V .. " error " .. name) end
  c.onClose = function(c)
    print(V .. " closed " .. name)
    if name == "c_cancel" then
      c:reConnect(30)
      mw.Timer.add(0, function() c:cancelReconnect() print(V .. " cancelled " .. name) end, false)
    end
    closed = closed + 1
    if closed == 6 and not KEEP then
      mw.Timer.add(0, function()
        collectgarbage("collect")
        collectgarbage("collect")
        local gone = {}
        for _, n in ipairs { "c_close", "c_finish", "c_destroy", "c_cancel", "p_peer", "p_fail" } do
          if not weak[n] then gone[#gone + 1] = n end
        end
        print(V .. " collected " .. table.concat(gone, ","))
      end, false)
    end
  end
  c:connect()
  weak[name] = c
  if KEEP then kept[name] = c elseif name == "c_close" or name == "c_cancel" then HELD[name] = c end
end
for _, name in ipairs { %s } do open(name) end
mw.Timer.add(10, function() end)     -- keeps the process up once every connection ended
local w = mw.Worker.new()
w.onWorkerReload = function()
  local s = {}
  for _, name in ipairs { %s } do s[#s + 1] = name .. "=" .. kept[name]:getStatus() end
  print(V .. " status " .. table.concat(s, " "))
end
mw.Worker.runAll()
%s
]]):format(v, ws, rst, tostring(opts.keep == true), table.concat(list, ", "), table.concat(list, ", "),
      opts.fail and 'error("' .. v .. ' does not start")' or "")
  end

  it("a connection the script ended stays ended across reloads; one that failed or the peer closed is connected again",
    function()
      local srv = ws_counter()
      local rst = H.server("rst", { "--framing", "line" })
      local RST = "text://127.0.0.1:" .. rst.port
      local p = start(ended_bot("v1", srv.url, RST))
      local id = {}
      for _ = 1, 5 do
        local _, cid, name = srv:wait_line("^CONNECT (%d+) /(%S+)$")
        id[name] = cid
      end
      for _, name in ipairs { "c_close", "c_finish", "c_destroy" } do
        seen(p, "^v1 login " .. name .. "$")
        srv:send("SEND " .. id[name] .. " end\n")
      end
      srv:send("CLOSE " .. id.c_cancel .. " 1000\n")
      srv:send("CLOSE " .. id.p_peer .. " 1000\n")
      -- every one ended; the ones the bot dropped are collected
      p:wait_line("^v1 collected c_finish,c_destroy,p_peer,p_fail$")
      seen(p, "^v1 cancelled c_cancel$")
      assert.are.equal(1, #p:grep("^v1 error p_fail$"), p:describe())
      for _, name in ipairs { "c_close", "c_finish", "c_destroy", "c_cancel", "p_peer", "p_fail" } do
        assert.are.equal(1, #p:grep("^v1 closed " .. name .. "$"), p:describe())
      end
      -- the reload connects the two the script did not end, and none of the others
      reload(p, ended_bot("v2", srv.url, RST, { keep = true }))
      p:wait_line("^v2 status c_close=CLOSED c_finish=CLOSED c_destroy=CLOSED c_cancel=CLOSED "
        .. "p_peer=CONNECTING p_fail=CONNECTING$")
      seen(p, "^v2 login p_peer$")
      srv:wait_line("^CONNECT 6 /p_peer$")
      seen(p, "^v2 error p_fail$")           -- fails again: the peer resets every connection
      seen(p, "^v2 closed p_fail$")
      -- a failed reload changes nothing
      reload(p, ended_bot("v-bad", srv.url, RST, { keep = true, fail = true }), true)
      -- the next one: still ended; p_peer is up; p_fail failed again, so it is revived again
      reload(p, ended_bot("v3", srv.url, RST, { keep = true }))
      p:wait_line("^v3 status c_close=CLOSED c_finish=CLOSED c_destroy=CLOSED c_cancel=CLOSED "
        .. "p_peer=ESTABLISHED p_fail=CONNECTING$")
      seen(p, "^v3 closed p_fail$")
      -- a version without c_close forgets it; one that declares it again connects it
      reload(p, ended_bot("v4", srv.url, RST, { keep = true,
        names = { "c_finish", "c_destroy", "c_cancel", "p_peer", "p_fail" } }))
      p:wait_line("^v4 status c_finish=CLOSED c_destroy=CLOSED c_cancel=CLOSED "
        .. "p_peer=ESTABLISHED p_fail=CONNECTING$")
      seen(p, "^v4 closed p_fail$")
      reload(p, ended_bot("v5", srv.url, RST, { keep = true }))
      p:wait_line("^v5 status c_close=CONNECTING c_finish=CLOSED c_destroy=CLOSED c_cancel=CLOSED "
        .. "p_peer=ESTABLISHED p_fail=CONNECTING$")
      seen(p, "^v5 login c_close$")
      srv:wait_line("^CONNECT 7 /c_close$")
      seen(p, "^v5 closed p_fail$")
      -- logins: each ended one once (c_close again only once it was forgotten), p_peer
      -- twice (once revived, then kept open), p_fail once per version
      for _, name in ipairs { "c_finish", "c_destroy", "c_cancel" } do
        assert.are.equal(1, #p:grep("^v%d login " .. name .. "$"), p:describe())
      end
      assert.are.same({ "v1 login c_close", "v5 login c_close" }, p:grep("^v%d login c_close$"))
      assert.are.same({ "v1 login p_peer", "v2 login p_peer" }, p:grep("^v%d login p_peer$"))
      assert.are.equal(7, #srv:grep("^CONNECT "), srv:describe())
      assert.are.equal(5, #rst:grep("^CONNECT "), rst:describe())
      assert.are.same({}, p:grep("^v%-bad "))
      assert.are.equal(4, R.count_err(p, "moonwire: reloaded"))
      R.stop(p)
    end)
end)
