-- Issue 15: sequential scripts. Coroutines on the loop beside callbacks (mw.spawn,
-- mw.sleep, mw.connect, conn:receive, mw.receiveAny, a send that waits), against real
-- servers: Python websockets (echo), ws_counter.py (numbered streams, closes on
-- command), flap.py (a sink that stops reading until told). Errors inside a coroutine,
-- cancel, a coroutine and callbacks side by side, and a reload with a live coroutine.
local H = require "spec.support.helper"
local R = require "spec.support.reload"

local function echo() local p = H.peer("ws_py_peer.py") p.url = "ws://127.0.0.1:" .. p.port .. "/echo" return p end

local function run(src, args, opts)
  local res = H.run(src, args, opts or { timeout = 20 })
  H.assert_exit(res, 0)
  return res
end

describe("coroutines", function()
  after_each(H.cleanup)

  it("a login -> reply -> subscribe -> N messages flow reads as one function", function()
    local srv = echo()
    local res = run([[
local mw = require "moonwire"
mw.spawn("bot", function(url)
  local c = assert(mw.connect(url))
  c:send('{"op":"login"}')
  local reply, kind = c:receive(5)
  print("REPLY", reply, kind)
  c:send('{"op":"subscribe"}')
  print("SUB", c:receive(5))
  for i = 1, 3 do c:send("tick " .. i) end
  for i = 1, 3 do print("MSG", c:receive(5)) end
  print("TIMEOUT", c:receive(0.1))
  c:close()
  print("CLOSED", c:receive())
end, arg[1])
]], { srv.url })
    assert.same({ 'REPLY\t{"op":"login"}\ttext', 'SUB\t{"op":"subscribe"}\ttext', "MSG\ttick 1\ttext",
      "MSG\ttick 2\ttext", "MSG\ttick 3\ttext", "TIMEOUT\tnil\ttimeout", "CLOSED\tnil\tclosed\t1000\t" }, res.lines)
  end)

  it("mw.connect fails with nil, message, code; a close by the server ends a receive with its code", function()
    local counter = R.ws_counter()
    local p = H.start([[
local mw = require "moonwire"
mw.spawn(function(url)
  print("BAD", mw.connect("ws://127.0.0.1:1/"))
  local c = assert(mw.connect(url))
  print("OPEN")
  print("GOT", c:receive(10))
  print("END", c:receive(10))
end, arg[1])
]], { counter.url .. "/echo" })
    p:wait_line("^OPEN$", 10)
    counter:wait_line("^CONNECT 1 ")
    counter:send("SEND 1 first\n")
    p:wait_line("^GOT\tfirst\ttext$", 10)
    counter:send("CLOSE 1 4001\n")
    p:wait_line("^END\tnil\tclosed\t4001\t", 10)
    local res = H.result(p, 10)
    H.assert_exit(res, 0)
    assert.equal("BAD\tnil\tconnect ws://127.0.0.1:1/: connection refused\t1", res.lines[1])
  end)

  it("an error in a coroutine is reported with its traceback; the others go on; cancel stops one", function()
    local srv = echo()
    local res = run([==[
local mw = require "moonwire"
local sleeper = mw.spawn("sleeper", function()
  local c <close> = assert(mw.connect(arg[1]))
  print("SLEEPER OPEN")
  mw.sleep(30)
  print("never")
end)
mw.spawn("broken", function()
  mw.sleep(0.05)
  local t = nil
  return t.field
end)
mw.spawn("canceller", function()
  mw.sleep(0.3)
  print("CANCEL", sleeper:cancel(), sleeper.status)
  mw.sleep(0.05)
  print("AGAIN", sleeper:cancel())
end)
print("STARTED", sleeper.status)
]==], { srv.url })
    assert.same({ "STARTED\trunning", "SLEEPER OPEN", "CANCEL\ttrue\tcancelled", "AGAIN\tfalse" }, res.lines)
    assert.truthy(res.stderr:find("moonwire: error in coroutine broken: [^\n]*attempt to index a nil value", 1), res.stderr)
    assert.truthy(res.stderr:find("stack traceback:", 1, true), res.stderr)
    -- the <close> connection of the cancelled coroutine was closed (a close frame, 1000)
    srv:wait_line("^CLOSE 1000 ", 5)
    assert.same({}, H.grep(res.lines, "never"))
  end)

  it("callbacks on one connection and a coroutine on another, in one script", function()
    local srv = echo()
    local res = run([[
local mw = require "moonwire"
local cb = mw.AsyncTcpConnection.new(arg[1])
cb.onWebSocketConnect = function(c) c:send("by callback") end
cb.onMessage = function(c, m) print("CB", m) c:close() end
cb:connect()
mw.spawn(function()
  local c = assert(mw.connect(arg[1]))
  c:send("by coroutine")
  print("CO", (c:receive(5)))
  c:close()
end)
]], { srv.url })
    table.sort(res.lines)
    assert.same({ "CB\tby callback", "CO\tby coroutine" }, res.lines)
  end)

  it("one coroutine serves two connections with mw.receiveAny", function()
    local counter = R.ws_counter()
    local p = H.start([[
local mw = require "moonwire"
mw.spawn(function(url)
  local a = assert(mw.connect(url .. "/echo/a"))
  local b = assert(mw.connect(url .. "/echo/b"))
  print("BOTH")
  local names = { [a] = "a", [b] = "b" }
  for _ = 1, 3 do
    local c, data = mw.receiveAny({ a, b }, 10)
    print("FROM", names[c], data)
  end
  print("TIMEOUT", mw.receiveAny({ a, b }, 0.1))
  a:close() b:close()
end, arg[1])
]], { counter.url })
    p:wait_line("^BOTH$", 10)
    counter:send("SEND 2 to-b\n")
    p:wait_line("^FROM\tb\tto%-b$", 10)
    counter:send("SEND 1 to-a\n")
    p:wait_line("^FROM\ta\tto%-a$", 10)
    counter:send("SEND 2 again-b\n")
    p:wait_line("^FROM\tb\tagain%-b$", 10)
    p:wait_line("^TIMEOUT\tnil\ttimeout$", 10)
    H.assert_exit(H.result(p, 10), 0)
  end)

  it("a send in a coroutine waits while the server does not read: every message arrives, in order", function()
    local srv = H.peer("flap.py", { "sink:20000" })
    local p = H.start([[
local mw = require "moonwire"
mw.spawn(function(url)
  local c = assert(mw.connect(url, { maxSendBufferSize = 64 * 1024 }))
  local pad = (" "):rep(1000)
  local waited = false
  for i = 1, 20000 do
    if c:bufferFull() and not waited then waited = true print("WAITING " .. i) end
    assert(c:send("m" .. i .. (i % 2 == 0 and "" or "")), "send failed")
  end
  print("SENT ALL, waited " .. tostring(waited))
  print("END", c:receive(20))
end, "ws://127.0.0.1:" .. arg[1] .. "/")
]], { srv.port })
    p:wait_line("^WAITING %d+$", 20)
    srv:send("READ\n")
    srv:wait_line("^GOT 20000 ok$", 30)
    p:wait_line("^SENT ALL, waited true$", 30)
    p:wait_line("^END\tnil\tclosed\t1000", 10)
    H.assert_exit(H.result(p, 10), 0)
  end)

  it("receive's queue is bounded: reading pauses, nothing is lost", function()
    local counter = R.ws_counter()
    local res = run([[
local mw = require "moonwire"
mw.spawn(function(url)
  local c = assert(mw.connect(url, { maxRecvQueue = 4 }))
  local last = 0
  while true do
    local m = c:receive(10)
    if not m or m:find("^END") then print("LAST " .. last, m) break end
    local n = tonumber(m:match("%d+ (%d+)"))
    if n ~= last + 1 then print("GAP at " .. n) end
    last = n
    if n % 500 == 0 then mw.sleep(0.01) end   -- a slow reader
  end
  c:close()
end, arg[1])
]], { counter.url .. "/count/100000/5000" })
    assert.same({ "LAST 5000\tEND 5000" }, res.lines)
  end)

  it("a send waiting in a coroutine returns nil and why when the connection goes", function()
    local srv = H.peer("flap.py", { "sink:1000000" })
    local p = H.start([[
local mw = require "moonwire"
mw.spawn(function(url)
  local c = assert(mw.connect(url, { maxSendBufferSize = 16 * 1024 }))
  c.onError = function() end
  local pad = ("x"):rep(1000)
  for i = 1, 1000000 do
    if c:bufferFull() then print("WAITING") end
    local ok, why = c:send(pad)
    if not ok then print("FAILED", ok, why) return end
  end
end, "ws://127.0.0.1:" .. arg[1] .. "/")
]], { srv.port })
    p:wait_line("^WAITING$", 20)
    srv:kill("sigkill")
    local _, why = p:wait_line("^FAILED\tnil\t(.*)$", 20)
    assert.equal("send ws://127.0.0.1:" .. srv.port .. "/: not sent: the connection is CLOSED", why)
    H.assert_exit(H.result(p, 10), 0)
  end)

  it("receive's queue holds at most maxRecvQueue messages: reading pauses there, nothing is lost", function()
    -- a reader that leaves messages queued (mw.sleep(0) every third one): the queue (in C)
    -- fills to the limit, reading pauses mid-read, and every message still arrives in order
    local counter = R.ws_counter()
    local res = run([[
local mw = require "moonwire"
local core = require "moonwire.core"
mw.spawn(function(url)
  local c = assert(mw.connect(url, { maxRecvQueue = 4 }))
  local last, most = 0, 0
  while true do
    local m = c:receive(10)
    if not m then print("receive: nil", last) break end
    most = math.max(most, core.rxCount(c) + 1)
    if m:find("^END") then break end
    local n = tonumber(m:match("%d+ (%d+)"))
    if n ~= last + 1 then print("GAP at " .. n) end
    last = n
    if n % 3 == 0 then mw.sleep(0) end
  end
  print("LAST " .. last, "MOST " .. most)
  c:close()
end, arg[1])
]], { counter.url .. "/count/100000/3000" })
    assert.same({ "LAST 3000\tMOST 4" }, res.lines)
  end)

  it("receive on a connection with onMessage is an error; outside a coroutine too", function()
    local res = H.run([[
local mw = require "moonwire"
local c = mw.AsyncTcpConnection.new("ws://127.0.0.1:1/")
print(pcall(mw.sleep, 1))
print(pcall(c.receive, c))
c.onMessage = function() end
mw.spawn(function() print(pcall(c.receive, c)) end)
]])
    H.assert_exit(res, 0)
    assert.truthy(res.lines[1]:find("mw.sleep must be called from a coroutine started by mw.spawn", 1, true), res.lines[1])
    assert.truthy(res.lines[2]:find("receive must be called from a coroutine started by mw.spawn", 1, true), res.lines[2])
    assert.truthy(res.lines[3]:find("receive: this connection has an onMessage callback", 1, true), res.lines[3])
  end)

  it("a reload keeps a live named coroutine running (the new functions apply) and cancels one no longer declared", function()
    local counter = R.ws_counter()
    local function bot(v, extra)
      return ([[
local mw = require "moonwire"
function handle(m) print("%s " .. m) end
mw.spawn("reader", function(url)
  local c = assert(mw.connect(url))
  print("OPEN")
  while true do
    local m = c:receive()
    if not m then break end
    handle(m)
  end
end, "%s")
%s
]]):format(v, counter.url .. "/echo", extra or "")
    end
    local p = R.start(bot("v1", 'mw.spawn("ticker", function() local g <close> = setmetatable({}, '
      .. '{ __close = function() print("TICKER CLOSED") end }) while true do mw.sleep(0.05) end end)'))
    p:wait_line("^OPEN$", 10)
    counter:wait_line("^CONNECT 1 ")
    counter:send("SEND 1 one\n")
    p:wait_line("^v1 one$", 10)
    R.replace(p.path, bot("v2"))
    p:kill("sighup")
    R.wait_reloaded(p)
    counter:send("SEND 1 two\n")
    p:wait_line("^TICKER CLOSED$", 10)     -- no longer declared: cancelled at the commit
    p:wait_line("^v2 two$", 10)            -- the same coroutine, the new global function
    assert.equal(1, #p:grep("^OPEN$"))    -- not started a second time
    assert.equal(0, #counter:grep("^CONNECT 2 "))
    R.stop(p)
  end)
end)
