-- moonwire.repl: `moonwire -i [script.lua]`, a Lua prompt inside the running loop
-- (issue 16): while it waits for a line, callbacks and coroutines run. Expressions print
-- their values, as Lua 5.4's own prompt does; an incomplete chunk goes on at the next
-- line (">> "); an error is printed and the prompt comes back; the end of input (^D)
-- stops the program as SIGTERM does. On a terminal: editing and history, and what
-- print() writes from callbacks appears above the prompt, the typed line drawn again.
local mw = require "moonwire"
local core = require "moonwire.core"

local M = {}

-- A chunk compiled: an expression first (its values are printed), then a statement.
function M.compile(src, name, env)
  env = env or _G   -- (an explicit nil would be the chunk's _ENV)
  local fn = load("return " .. src, name or "=stdin", "t", env)
  if fn then return fn end
  return load(src, name or "=stdin", "t", env)
end

-- The next line of a chunk, after the pending lines (nil: none): "run", fn, or
-- "more", the pending source (an incomplete chunk), or "error", the message.
function M.step(pending, line, name, env)
  local src = pending and (pending .. "\n" .. line) or line
  local fn, err = M.compile(src, name, env)
  if fn then return "run", fn end
  if err:find("<eof>$") then return "more", src end
  return "error", err
end

-- Values as the prompt prints them: tab-separated, a newline; "" for none.
function M.format(...)
  local n = select("#", ...)
  if n == 0 then return "" end
  local t = table.pack(...)
  for i = 1, n do t[i] = tostring(t[i]) end
  return table.concat(t, "\t", 1, n) .. "\n"
end

local function start()
  local tty = core.isatty(0) and core.isatty(1)
  local pending = nil   -- the lines of an incomplete chunk
  if rawget(_G, "mw") == nil then rawset(_G, "mw", mw) end   -- at hand at the prompt

  local function write(s)
    if tty then core.ttyPrint(s) else io.stdout:write(s) io.stdout:flush() end
  end

  local function show(...)
    if select("#", ...) > 0 then write(M.format(...)) end
  end

  -- what the prompt's chunks and the callbacks print goes above the prompt
  if tty then
    local raw_print = print
    _G.print = function(...)
      if not core.ttyPrint then return raw_print(...) end
      show(...)
    end
  end

  local function run_line(line)
    local what, fn = M.step(pending, line)
    if what == "more" then   -- incomplete: go on at the next line
      pending = fn
      if tty then core.ttySetPrompt(">> ") end
      return
    elseif what == "error" then
      pending = nil
      if tty then core.ttySetPrompt("> ") end
      write(fn .. "\n")
      return
    end
    pending = nil
    if tty then core.ttySetPrompt("> ") end
    -- through the door: an error is reported with its traceback, the prompt goes on
    local results
    local ok = core.call("prompt", function() results = table.pack(fn()) end)
    if ok and results and results.n > 0 then show(table.unpack(results, 1, results.n)) end
  end

  local function finish()
    if tty then write("\n") end
    core.stop()
  end

  if tty then
    local ok, why = core.ttyOpen("> ", function(line)
      if line == nil then finish()
      elseif line == false then   -- ^C: the line and a pending chunk are dropped
        pending = nil
        core.ttySetPrompt("> ")
      else run_line(line) end
    end)
    if ok then
      -- ^C clears the line (and interrupts a chunk that runs too long); ^D ends
      core.ttyCatchInterrupt(true)
      return
    end
    io.stderr:write("moonwire: ", tostring(why), "\n")
  end
  mw.stdin.onLine = run_line
  mw.stdin.onEnd = finish
end

return setmetatable(M, { __call = function(_, ...) return start(...) end })
