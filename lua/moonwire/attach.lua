-- moonwire.attach: `moonwire attach [PID|PATH]` (issue 16, part 3): a prompt that evaluates
-- in a running bot's own Lua state (the bot runs with --console or called mw.console()).
-- The line editing is here (tty.c); the bot receives whole lines as frames and answers
-- with what the chunk printed and its values (console_proto.h). Without a terminal, each
-- line read is sent and every answer printed; the end of input detaches once all are in.
-- ^C (SIGINT over a pipe) interrupts the chunk running in the bot, or drops the line.
local mw = require "moonwire"
local core = require "moonwire.core"

local USAGE = [[
usage: moonwire attach [PID|PATH]
Opens a Lua prompt in a running bot (one started with --console, or that called
mw.console()). With no argument: the only such bot of this user; several are listed.
PID picks the bot by process id, PATH names its socket. ^D detaches (the bot goes on),
^C interrupts the chunk running in the bot.
]]

local function fail(msg, code)
  io.stderr:write("moonwire attach: ", msg, "\n")
  core.setExitCode(code or 1)
end

-- The consoles of this user that answer, by pid; stale sockets (their bot was killed) removed.
local function consoles(dir)
  local live = {}
  for _, name in ipairs(core.consoleList(dir) or {}) do
    local p = dir .. "/" .. name
    local up = core.consoleProbe(p)
    if up then
      live[#live + 1] = { path = p, pid = tonumber(name:match("^(%d+)%-")) or 0, script = name:match("^%d+%-(.*)%.sock$") or name }
    elseif up == false then
      os.remove(p)
    end
  end
  table.sort(live, function(a, b) return a.pid < b.pid end)
  return live
end

local function pick(target)
  local dir, err = core.consoleDir(false)
  if not dir then return fail(err) end
  if target and target:find("/") then return target end
  if target and not target:match("^%d+$") then io.stderr:write(USAGE) return fail("'" .. target .. "' is neither a PID nor a path", 2) end
  local live = consoles(dir)
  if target then
    for _, c in ipairs(live) do
      if c.pid == tonumber(target) then return c.path end
    end
    local why = core.pidAlive(tonumber(target)) and "" or " (no process " .. target .. ")"
    return fail(("%s: no console at %s/%s-*.sock%s (is the bot running with --console?)"):format(target, dir, target, why))
  end
  if #live == 1 then return live[1].path end
  if #live == 0 then
    return fail(("no bot with a console is running (none in %s): start one with moonwire --console bot.lua"):format(dir))
  end
  local lines = { ("%d bots have a console; name one (moonwire attach PID):"):format(#live) }
  for _, c in ipairs(live) do lines[#lines + 1] = ("  %-8d %-20s %s"):format(c.pid, c.script, c.path) end
  return fail(table.concat(lines, "\n"))
end

return function(args)
  if args[1] == "--help" or args[1] == "-h" then io.stdout:write(USAGE) return end
  if #args > 1 then io.stderr:write(USAGE) return fail("one PID or PATH at most", 2) end
  local path = pick(args[1])
  if not path then return end

  local tty = core.isatty(0) and core.isatty(1)
  local outstanding, eof, done, greeted = 0, false, false, false
  local peer

  local function out(s)
    if s == "" then return end
    if tty then core.ttyPrint(s) else io.stdout:write(s) io.stdout:flush() end
  end

  local function finish()
    if done then return end
    done = true
    if peer then peer:close() end
    if tty then core.ttyClose() end
    mw.stdin:close()
    core.onInterrupt(nil)
    core.stop()
  end

  local function answered(prompt)
    outstanding = outstanding - 1
    if tty then core.ttySetPrompt(prompt) end
    if eof and greeted and outstanding <= 0 then finish() end
  end

  local function send(line)
    if done then return end
    outstanding = outstanding + 1
    peer:send("e", line)
  end

  local err
  peer, err = core.consoleConnect(path, function(_, kind, s)
    if kind == nil then
      peer = nil
      if not done then
        if s then fail(path .. ": " .. s) else
          if outstanding > 0 then fail("the bot closed the console before answering " .. outstanding .. " line(s)")
          elseif not eof then io.stderr:write("moonwire attach: the bot closed the console\n") end
        end
        finish()
      end
    elseif kind == "h" then
      greeted = true   -- accepted (a refusal comes instead of this): the end of input may detach now
      local pid, script = s:match("^(%d+) (.*)$")
      if tty then out(("attached to %s (pid %s); ^D detaches, ^C interrupts\n"):format(script or "?", pid or "?")) end
      if eof and outstanding <= 0 then finish() end
    elseif kind == "n" then
      fail(path .. ": " .. s)
      done = true
    elseif kind == "o" then out(s)
    elseif kind == "r" then out(s) answered("> ")
    elseif kind == "x" then out(s .. "\n") answered("> ")
    elseif kind == "m" then answered(">> ")
    end
  end)
  if not peer then return fail(err) end

  if tty then
    local ok, why = core.ttyOpen("> ", function(line)
      if line == nil then out("\n") finish()
      elseif line == false then   -- ^C: interrupt the chunk in the bot, or drop the pending one
        if peer then peer:send("i") end
        core.ttySetPrompt("> ")
      else send(line) end
    end)
    if ok then core.ttyCatchInterrupt(true) return end
    io.stderr:write("moonwire attach: ", tostring(why), "\n")
  end
  core.onInterrupt(function() if peer then peer:send("i") end end)
  mw.stdin.onLine = send
  mw.stdin.onEnd = function()
    eof = true
    if greeted and outstanding <= 0 then finish() end
  end
end
