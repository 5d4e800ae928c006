-- Issue 16 part 3: a console attached to a running bot. `moonwire --console bot.lua` (or
-- mw.console()) listens on a Unix socket; `moonwire attach` evaluates chunks in the bot's
-- own Lua state. Over pipes (attach reads lines when stdin is no terminal) and one case
-- under tmux: evaluation and print routing, mw.connections(), the socket's directory and
-- modes, several attachers, detach, the socket removed at exit (and a stale one after
-- SIGKILL), picking the bot, SO_PEERCRED refusal of another uid, interrupting a runaway
-- chunk, the bot's rate while attached, and a reload with a console open.
local H = require "spec.support.helper"
local R = require "spec.support.reload"
local TM = require "spec.support.tmux"
local uv = require "luv"

local xdg, dir
local function env() return { XDG_RUNTIME_DIR = xdg } end

-- Waits (ticking) until pred() is true.
local function wait_for(pred, what, timeout)
  local tick = uv.new_timer()
  tick:start(0, 20, function() end)
  local ok = H.run_until(pred, (timeout or 10) * H.slow)
  tick:stop() tick:close()
  assert(ok, "timed out waiting for " .. what)
end

local function socks()
  local t = {}
  local d = uv.fs_scandir(dir)
  while d do
    local name = uv.fs_scandir_next(d)
    if not name then break end
    if name:find("%.sock$") then t[#t + 1] = dir .. "/" .. name end
  end
  return t
end

local function exists(p) return uv.fs_stat(p) ~= nil end

-- A bot with --console; waits for its socket (named by pid and script).
local function bot(source, name, opts)
  opts = opts or {}
  local path = H.write_script(source, name or "bot.lua")
  local argv = { "--console", path }
  local p = H.start(nil, nil, { argv = argv, env = env() })
  p.sock = dir .. "/" .. p.pid .. "-" .. (name or "bot.lua"):gsub("%.lua$", "") .. ".sock"
  wait_for(function() return exists(p.sock) or p.exited end, "the console socket " .. p.sock)
  assert(exists(p.sock), p:describe())
  return p
end

-- `moonwire attach args...` fed `input` over a pipe, to its end.
local function attach(args, input, opts)
  opts = opts or {}
  local argv = {}
  for _, a in ipairs(opts.prefix or {}) do argv[#argv + 1] = a end
  argv[#argv + 1] = H.bin
  argv[#argv + 1] = "attach"
  for _, a in ipairs(args) do argv[#argv + 1] = tostring(a) end
  local p = H.spawn(argv, { env = env(), name = "moonwire attach" })
  if input then p:send(input) p:close_stdin() end
  return p
end

-- input nil or "": stdin closed at once (nothing written: an attach that fails ends at
-- once, and a write into its closed pipe would be SIGPIPE for busted)
local function attach_run(args, input, opts)
  local p = attach(args, input ~= "" and input or nil, opts)
  p:close_stdin()
  local code = p:wait(20)
  assert(code ~= nil, "attach did not end: " .. p:describe())
  return p
end

describe("moonwire --console and moonwire attach", function()
  before_each(function()
    xdg = H.tmpdir() .. "/xdg"
    uv.fs_mkdir(xdg, tonumber("755", 8))
    dir = xdg .. "/moonwire"
  end)
  after_each(H.cleanup)

  it("evaluates in the bot: values, globals, multi-line chunks, errors; print goes to the attacher", function()
    local srv = R.ws_counter()
    local b = bot(([[
      local mw = require "moonwire"
      counter = 41
      c = mw.AsyncTcpConnection.new("%s/echo/one")
      c.onMessage = function(_, m) print("BOT got " .. m) end
      c:connect()
    ]]):format(srv.url))
    srv:wait_line("^CONNECT 1 ", 10)
    local a = attach_run({ b.pid }, table.concat({
      "counter + 1",
      "print('to the attacher', 7)",
      "do io.write('written', 1, '\\n') end",
      "function twice(x)",
      "  return x * 2",
      "end",
      "twice(counter)",
      "error('boom')",
      "local t = mw.connections(); return #t, t[1].id, t[1].url, t[1].status, t[1].bytesIn > 0, t[1].age >= 0",
      "mw.connections()[1].conn:send('from the console')",
      "c.onMessage = function(_, m) print('SWAPPED ' .. m) end",
      "c:send('again')",
      "print(string.rep('p', 3 * 1024 * 1024))",
      "string.rep('r', 2 * 1024 * 1024)",
      "counter = 100",
    }, "\n") .. "\n")
    assert.equal(0, a.code, a:describe())
    assert.equal("42", a.lines[1])
    assert.equal("to the attacher\t7", a.lines[2])
    assert.equal("written1", a.lines[3])
    assert.equal("82", a.lines[4])
    assert.equal("console:1: boom", a.lines[5])
    assert.truthy(a:stdout_text():find("1\t1\t" .. srv.url .. "/echo/one\tESTABLISHED\ttrue\ttrue", 1, true), a:describe())
    -- past a frame's 1 MiB: output in pieces, an answer cut short with a note
    assert.truthy(a:stdout_text():find("\n" .. string.rep("p", 3 * 1024 * 1024) .. "\n", 1, true))
    assert.truthy(a:stdout_text():find("\n" .. string.rep("r", 1024 * 1024 - 80) .. "\n... (1048657 bytes cut: the console sends at most 1 MiB)", 1, true))
    -- the chunk's print went to the attacher, the bot's callbacks print on its own stdout
    b:wait_line("^%u[%a ]* from the console$", 10)   -- echoed before (BOT got) or after (SWAPPED) the swap
    b:wait_line("^SWAPPED again$", 10)
    assert.same({}, b:grep("to the attacher"))
    assert.same({}, b:grep("written"))
    -- detached: the bot goes on as it was, its state kept
    assert.is_true(b:alive())
    local again = attach_run({ b.sock }, "counter\n")
    assert.same({ "100" }, again.lines)
    R.stop(b)
  end)

  it("the directory is 0700, the socket 0600, and the socket goes at a normal exit and at SIGTERM", function()
    local b = bot("require('moonwire').Timer.add(0.05, function() end)", "modes.lua")
    assert.equal(tonumber("40700", 8), uv.fs_stat(dir).mode)
    assert.equal(tonumber("140600", 8), uv.fs_stat(b.sock).mode)
    R.stop(b)
    assert.is_false(exists(b.sock))
    -- a bot that ends by itself (its last timer) removes it too
    local e = bot("local mw = require 'moonwire' mw.Timer.add(0.5, function() print('END') end, nil, false)", "ends.lua")
    assert.equal(0, e:wait(10), e:describe())
    assert.is_false(exists(e.sock))
  end)

  it("after SIGKILL the stale socket is removed by attach and by the next bot", function()
    local b = bot("require('moonwire').Timer.add(0.05, function() end)", "killed.lua")
    b:kill("sigkill")
    b:wait(10)
    assert.is_true(exists(b.sock))     -- nothing could remove it
    local a = attach_run({}, "")
    assert.equal(1, a.code)
    assert.truthy(a:stderr_text():find("no bot with a console is running", 1, true), a:describe())
    assert.is_false(exists(b.sock))
    local k = bot("require('moonwire').Timer.add(0.05, function() end)", "killed.lua")
    k:kill("sigkill") k:wait(10)
    local n = bot("require('moonwire').Timer.add(0.05, function() end)", "next.lua")
    assert.is_false(exists(k.sock))    -- the next bot swept it
    local by_pid = attach_run({ k.pid }, "")
    assert.equal(1, by_pid.code)
    assert.truthy(by_pid:stderr_text():find(("moonwire attach: %d: no console at %s/%d-*.sock"):format(k.pid, dir, k.pid), 1, true), by_pid:describe())
    assert.truthy(by_pid:stderr_text():find("(is the bot running with --console?)", 1, true))
    R.stop(n)
  end)

  it("with no argument: the only bot, or a list of several", function()
    local one = bot("require('moonwire').Timer.add(0.05, function() end) who = 'one'", "one.lua")
    assert.same({ "one" }, attach_run({}, "who\n").lines)
    local two = bot("require('moonwire').Timer.add(0.05, function() end) who = 'two'", "two.lua")
    local a = attach_run({})
    assert.equal(1, a.code)
    assert.same({}, a.lines)
    local err = a:stderr_text()
    assert.truthy(err:find("2 bots have a console", 1, true), err)
    assert.truthy(err:find(tostring(one.pid), 1, true) and err:find(tostring(two.pid), 1, true), err)
    assert.same({ "two" }, attach_run({ two.pid }, "who\n").lines)
    R.stop(one) R.stop(two)
  end)

  it("two attachers at once each get their own answers", function()
    local b = bot("require('moonwire').Timer.add(0.05, function() end) n = 0", "two.lua")
    local a1 = attach({ b.pid })
    local a2 = attach({ b.pid })
    a1:send("function one()\n")          -- a pending chunk of a1 ...
    a2:send("print('two says', 2)\n")    -- ... does not mix with a2's lines
    a2:wait_line("^two says\t2$", 10)
    a1:send("  return 'one done'\nend\none()\n")
    a1:wait_line("^one done$", 10)
    a1:close_stdin() a2:close_stdin()
    assert.equal(0, a1:wait(10)) assert.equal(0, a2:wait(10))
    assert.same({ "one done" }, a1.lines)
    assert.same({ "two says\t2" }, a2.lines)
    R.stop(b)
  end)

  it("refuses a peer of another uid (SO_PEERCRED) with a clear message", function()
    local b = bot("require('moonwire').Timer.add(0.05, function() end)", "guarded.lua")
    -- nobody, but with CAP_DAC_OVERRIDE: it passes the 0700 directory and the 0600
    -- socket, so only the bot's SO_PEERCRED check stands in the way
    local a = attach_run({ b.sock }, nil, { prefix = { "setpriv", "--reuid=nobody", "--regid=nogroup",
      "--clear-groups", "--inh-caps=+dac_override", "--ambient-caps=+dac_override" } })
    assert.equal(1, a.code)
    assert.same({}, a.lines)
    assert.truthy(a:stderr_text():find(b.sock .. ": permission refused: uid 65534 is not the bot's uid 0", 1, true), a:describe())
    wait_for(function() return b:stderr_text():find("refused a peer of uid 65534", 1, true) end, "the bot's note")
    -- without the capability the file modes refuse it first
    local plain = attach_run({ b.sock }, nil, { prefix = { "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups" } })
    assert.equal(1, plain.code)
    assert.truthy(plain:stderr_text():find("permission denied", 1, true), plain:describe())
    -- the bot's own uid still gets in
    assert.same({ "2" }, attach_run({ b.sock }, "1 + 1\n").lines)
    R.stop(b)
  end)

  it("a peer that sends no frame is dropped; the bot and other attachers go on", function()
    local b = bot("require('moonwire').Timer.add(0.05, function() end) v = 'still here'", "garbage.lua")
    local raw = uv.new_pipe(false)
    local got, ended = "", false
    raw:connect(b.sock, function(err)
      assert(not err, err)
      raw:read_start(function(_, data) if data then got = got .. data else ended = true end end)
      raw:write("Zhello")
    end)
    wait_for(function() return ended end, "the bot to drop the peer")
    raw:close()
    assert.equal("h", got:sub(1, 1))    -- it had its hello, then the end
    assert.same({ "still here" }, attach_run({ b.pid }, "v\n").lines)
    R.stop(b)
  end)

  it("SIGINT at the attacher interrupts a runaway chunk in the bot, which goes on", function()
    local b = bot("require('moonwire').Timer.add(0.05, function() end) alive = 'yes'", "spin.lua")
    local a = attach({ b.pid })
    a:send("print('spinning') while true do end\n")
    a:wait_line("^spinning$", 10)
    a:kill("sigint")
    a:wait_line("^console:1: interrupted$", 10)
    a:send("alive\n")
    a:wait_line("^yes$", 10)
    a:close_stdin()
    assert.equal(0, a:wait(10), a:describe())
    R.stop(b)
  end)

  it("a bot streaming messages keeps its rate while an attacher types slowly", function()
    local srv = R.ws_counter()
    local b = bot(([[
      io.stdout:setvbuf("line")
      local mw = require "moonwire"
      local n, last, gaps = 0, 0, 0
      local c = mw.AsyncTcpConnection.new("%s/count/2000/100000")
      c.onMessage = function(_, m)
        local i = tonumber(m:match(" (%%d+)$"))
        if i and i ~= last + 1 then gaps = gaps + 1 end
        last = i or last
        n = n + 1
      end
      c:connect()
      mw.Timer.add(0.2, function() print("TICK " .. n .. " " .. gaps) n = 0 end)
    ]]):format(srv.url), "stream.lua")
    local function ticks(k)
      local t = {}
      for _ = 1, k do
        local _, v, g = b:wait_line("^TICK (%d+) (%d+)$", 10)
        t[#t + 1] = tonumber(v)
        assert.equal("0", g)
      end
      return t
    end
    ticks(2)                          -- the stream under way
    local before = ticks(5)
    -- attached: one attacher sends a line every 50 ms, a raw peer dribbles a frame a
    -- byte at a time (the bot must never wait for the rest of it)
    local a = attach({ b.pid })
    local raw = uv.new_pipe(false)
    local connected = false
    raw:connect(b.sock, function(err) assert(not err, err) connected = true end)
    wait_for(function() return connected end, "the raw peer")
    local frame = "e\0\0\0\20" .. "x = (x or 0) + 1 -- "
    local i, sent = 0, 0
    local timer = uv.new_timer()
    timer:start(0, 50, function()
      i = i + 1
      if i <= #frame then raw:write(frame:sub(i, i)) end
      a:send("sent = (sent or 0) + 1; return sent\n") sent = sent + 1
    end)
    local during = ticks(5)
    timer:stop() timer:close()
    a:close_stdin()
    assert.equal(0, a:wait(10), a:describe())
    raw:close()
    assert.is_true(#a.lines >= sent and sent >= 10, a:describe())
    table.sort(before) table.sort(during)
    local median = before[3]
    assert.is_true(median > 200, "the stream is too slow to measure: " .. median)
    -- every interval while attached within 30% of the usual rate
    assert.is_true(during[1] >= median * 0.7, ("attached %s vs %s"):format(table.concat(during, ","), table.concat(before, ",")))
    R.stop(b)
  end)

  it("a reload from the console, and SIGHUP with a console open, keep the connection: no message lost or doubled", function()
    local srv = R.ws_counter()
    local b = bot(([[
      io.stdout:setvbuf("line")
      local mw = require "moonwire"
      local s = mw.state("s", { last = 0, loads = 0 })
      s.loads = s.loads + 1
      print("LOADED " .. s.loads)
      local c = mw.AsyncTcpConnection.new("%s/count/500/3000")
      c.onMessage = function(_, m)
        local i = tonumber(m:match("^%%d+ (%%d+)$"))
        if i then
          if i ~= s.last + 1 then print("GAP " .. s.last .. " " .. i) end
          s.last = i
          if i == 3000 then print("ALL") end
        end
      end
      c:connect()
    ]]):format(srv.url), "rl.lua")
    b:wait_line("^LOADED 1$", 10)
    srv:wait_line("^CONNECT 1 ", 10)
    local a = attach({ b.pid })      -- stays attached through both reloads
    a:send("mw.reload()\n")
    b:wait_line("^LOADED 2$", 10)
    b:kill("sighup")
    b:wait_line("^LOADED 3$", 10)
    a:send("mw.state('s').loads\n")
    a:wait_line("^3$", 10)
    a:close_stdin()
    assert.equal(0, a:wait(10), a:describe())
    b:wait_line("^ALL$", 20)
    assert.same({}, b:grep("^GAP"))
    assert.same({}, srv:grep("^CONNECT 2"))
    R.stop(b)
  end)

  it("on a terminal: a prompt in the bot, ^D detaches", function()
    local b = bot("require('moonwire').Timer.add(0.05, function() end) greeting = 'hello'", "tty.lua")
    local tty = TM.session(("XDG_RUNTIME_DIR=%s %s attach %d"):format(xdg, H.bin, b.pid))
    tty:wait("attached to tty %(pid " .. b.pid .. "%)")
    tty:keys("greeting .. ' world'", "Enter")
    tty:wait("\nhello world\n>")
    tty:keys("for i = 1, 2 do", "Enter")
    tty:wait("\n>>")
    tty:type("print('line ' .. i) end")
    tty:keys("Enter")
    tty:wait("line 1\nline 2\n")
    tty:type("while true do end")
    tty:keys("Enter")
    tty:keys("C-c")
    tty:wait("console:1: interrupted")
    tty:keys("C-d")
    tty:wait("EXIT=0")
    tty:kill()
    assert.is_true(b:alive())
    assert.same({}, b:grep("hello world"))
    R.stop(b)
  end)

  it("with -i too: the bot's prompt keeps its print, the attacher's chunk prints to the attacher", function()
    local path = H.write_script("bot_i = 'yes'", "both.lua")
    local tty = TM.session(("XDG_RUNTIME_DIR=%s %s -i --console %s"):format(xdg, H.bin, path))
    tty:wait("^>")
    wait_for(function() return #socks() == 1 end, "the console socket")
    local a = attach_run({}, "print('for the attacher')\nbot_i\n")
    assert.same({ "for the attacher", "yes" }, a.lines)
    tty:keys("print('at the prompt')", "Enter")
    tty:wait("\nat the prompt\n")
    assert.falsy(tty:pane():find("for the attacher", 1, true), tty:pane())
    tty:keys("C-d")
    tty:wait("EXIT=0")
    tty:kill()
    assert.same({}, socks())
  end)
end)
