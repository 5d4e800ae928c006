-- Issue 17 part 2: after a write, moonwire reads at once (conn.c read_after_write), so a
-- request-reply exchange with a peer on the same core needs no poll between the two. These
-- cases run the bot and its echo server pinned to one CPU, where that read finds the reply
-- most of the time, and hold the exchange to what the loop owes everything else: every
-- reply delivered once and in order, timers on time, a second connection served, the
-- end of input seen. (The round-trip figure is scripts/bench's echo_32B.)
local H = require "spec.support.helper"

-- the first CPU this process may run on
local function a_cpu()
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("a")
  f:close()
  return s:match("Cpus_allowed_list:%s*(%d+)") or "0"
end

local function pinned_server(cpu, mode)
  local p = H.spawn({ "taskset", "-c", cpu, H.python, "-u", H.src .. "/spec/servers/peer.py", mode },
    { name = "peer.py " .. mode })
  local _, port = p:wait_line("^PORT (%d+)$", 10)
  p.port = tonumber(port)
  return p
end

-- A bot that keeps one exchange going for SECS seconds (each reply sends the next
-- numbered line), checks that each reply is the line it sent last, and ticks a
-- 10 ms timer; a second connection gets a line every 50 ms from another timer.
local BOT = [==[
  local mw = require "moonwire"
  local port, secs = arg[1], tonumber(arg[2])
  local sent, got, bad, ticks, maxgap, other = 0, 0, 0, 0, 0, 0
  local t0 = mw.now()
  local last = t0
  local a = mw.AsyncTcpConnection.new("text://127.0.0.1:" .. port)
  local b = mw.AsyncTcpConnection.new("text://127.0.0.1:" .. port)
  local function next_line(c) sent = sent + 1 c:send("n" .. sent) end
  a.onConnect = next_line
  a.onMessage = function(c, line)
    got = got + 1
    if line ~= "n" .. sent then bad = bad + 1 end
    if mw.now() - t0 < secs then next_line(c) else c:close() end
  end
  b.onMessage = function() other = other + 1 end
  local tick = mw.Timer.add(0.01, function()
    local now = mw.now()
    ticks = ticks + 1
    if now - last > maxgap then maxgap = now - last end
    last = now
  end)
  local poke = mw.Timer.add(0.05, function() b:send("other") end)
  a.onClose = function()
    mw.Timer.del(tick)
    mw.Timer.del(poke)
    b:close()
    print(string.format("SENT %d GOT %d BAD %d TICKS %d MAXGAP %.3f OTHER %d", sent, got, bad, ticks, maxgap, other))
  end
  a:connect()
  b:connect()
]==]

describe("read after write (issue 17 part 2)", function()
  after_each(H.cleanup)

  it("an exchange pinned to one core: replies once each, in order; timers and another connection served", function()
    local cpu = a_cpu()
    local srv = pinned_server(cpu, "echo")
    local res = H.run(BOT, { srv.port, 1.0 }, { prefix = { "taskset", "-c", cpu }, timeout = 20 })
    H.assert_exit(res, 0)
    local line = H.grep(res.lines, "^SENT")[1]
    assert.is_not_nil(line, H.describe(res))
    local sent, got, bad, ticks, maxgap, other =
      line:match("^SENT (%d+) GOT (%d+) BAD (%d+) TICKS (%d+) MAXGAP ([%d.]+) OTHER (%d+)$")
    sent, got, bad, ticks, maxgap, other =
      tonumber(sent), tonumber(got), tonumber(bad), tonumber(ticks), tonumber(maxgap), tonumber(other)
    assert.equal(sent, got, line)
    assert.equal(0, bad, line)
    assert.is_true(sent > 500, "the exchange went on: " .. line)
    -- 100 ticks are due in the second; a loop held by the exchange would make none
    assert.is_true(ticks >= 50, "timers ran: " .. line)
    assert.is_true(maxgap < 0.25, "no timer waited long: " .. line)
    assert.is_true(other >= 5, "the other connection was served: " .. line)
  end)

  it("a server that closes in mid-exchange: the end of input is seen at once", function()
    local cpu = a_cpu()
    local srv = pinned_server(cpu, "echo")
    local bot = H.start([==[
      local mw = require "moonwire"
      local n = 0
      local c = mw.AsyncTcpConnection.new("text://127.0.0.1:" .. arg[1])
      c.onConnect = function(conn) conn:send("x") end
      c.onMessage = function(conn) n = n + 1 conn:send("x") end
      c.onClose = function() print("CLOSED AFTER " .. n) end
      c:connect()
    ]==], { srv.port }, { prefix = { "taskset", "-c", cpu } })
    -- the 300th line has come round: the peer hangs up in the middle of the exchange
    for _ = 1, 300 do srv:wait_line("^LINE 1 x$", 10) end
    local t = H.now()
    srv:send("CLOSE *\n")
    local res = H.result(bot, 10)
    H.assert_exit(res, 0)
    local n = tonumber((H.grep(res.lines, "^CLOSED AFTER (%d+)$")[1] or ""):match("%d+$"))
    assert.is_true(n ~= nil and n >= 300, H.describe(res))
    assert.is_true(H.now() - t < 2, "the close was seen within 2 s")
  end)
  it("an error a callback queued is told before a message that read after write finds", function()
    local srv = H.server("echo")
    -- m1 and m2 come in one read; m1 pauses, so m2 waits in moonwire and m3 in the
    -- kernel. The resume delivers m2 in a deferred pass, whose callback queues an error
    -- (a refused line: a newline inside) and writes; the read after that write finds m3,
    -- which must wait until onError has been told.
    local bot = H.start([==[
      local mw = require "moonwire"
      local errs, seen = 0, {}
      local a = mw.AsyncTcpConnection.new("text://127.0.0.1:" .. arg[1])
      local b = mw.AsyncTcpConnection.new("text://127.0.0.1:" .. arg[1])
      a.onConnect = function() b:connect() end
      b.onConnect = function() print("READY") end
      a.onError = function() errs = errs + 1 end
      a.onMessage = function(conn, line)
        seen[#seen + 1] = line .. "@" .. errs
        if line == "m1" then conn:pauseRecv() print("PAUSED")
        elseif line == "m2" then
          assert(conn:send("two\nlines") == false)
          conn:send("y")
        elseif line == "m3" then
          print("SEEN " .. table.concat(seen, " "))
          conn:close()
          b:close()
        end
      end
      b.onMessage = function(_, line) if line == "go" then a:resumeRecv() end end
      a:connect()
    ]==], { srv.port })
    bot:wait_line("^READY$", 10)
    srv:send("SEND 1 m1\\nm2\\n\n")
    bot:wait_line("^PAUSED$", 10)
    srv:send("SEND 1 m3\\n\n")
    srv:send("SEND 2 go\\n\n")
    local res = H.result(bot, 10)
    H.assert_exit(res, 0)
    assert.same({ "SEEN m1@0 m2@0 m3@1" }, H.grep(res.lines, "^SEEN"), H.describe(res))
  end)
end)
