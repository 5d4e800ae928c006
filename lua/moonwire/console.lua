-- moonwire.console: the bot's end of the console (issue 16, part 3): `moonwire --console
-- bot.lua` or mw.console() listens on a Unix socket (src/console.c: its directory 0700,
-- the socket 0600, a peer of another uid, root aside, refused by SO_PEERCRED) for
-- `moonwire attach`. Each attacher sends lines (frames, src/console_proto.h); a whole chunk
-- (repl.lua's incomplete-chunk logic: "more" until it compiles) is evaluated in this Lua
-- state from the loop, between callbacks, and what it prints goes back to that attacher.
-- The line editing is the attacher's: the bot only ever reads whole frames, never waits.
local core = require "moonwire.core"
local repl = require "moonwire.repl"

local M = {}
local server, path
local current      -- the attacher whose chunk runs now: print and io.write go to it

-- A frame's payload is at most 1 MiB (console_proto.h): output goes in pieces, an
-- answer (which must arrive, or the attacher waits for it) is cut short.
local MAX = 1024 * 1024
local function send(p, kind, s)
  if #s <= MAX then return p:send(kind, s) end
  if kind == "o" then
    for i = 1, #s, MAX do p:send("o", s:sub(i, i + MAX - 1)) end
    return
  end
  local note = ("\n... (%d bytes cut: the console sends at most 1 MiB)\n"):format(#s - MAX + 80)
  return p:send(kind, s:sub(1, MAX - 80) .. note)
end

-- print and io.write while a chunk runs: to its attacher. They are put in place
-- only for the chunk (nothing else runs meanwhile), so whatever print the bot has
-- (its own, -i's above the prompt) stays its own the rest of the time.
local function console_print(...)
  local t = table.pack(...)
  for i = 1, t.n do t[i] = tostring(t[i]) end
  send(current, "o", table.concat(t, "\t", 1, t.n) .. "\n")
end

local function console_write(...)
  local t = table.pack(...)
  for i = 1, t.n do
    local v = t[i]
    if type(v) ~= "string" and type(v) ~= "number" then
      error(("bad argument #%d to 'write' (string expected, got %s)"):format(i, type(v)), 2)
    end
    t[i] = tostring(v)
  end
  send(current, "o", table.concat(t, "", 1, t.n))
  return io.stdout
end

-- fn(...) for attacher p, what it prints going to p: true, results... or false, message
local function run_for(p, fn)
  local prev, saved_print, saved_write = current, _G.print, io.write
  current = p
  _G.print, io.write = console_print, console_write
  local res = table.pack(core.consoleEval(p, fn))
  current = prev
  -- a chunk that assigned print or io.write itself keeps its own
  if _G.print == console_print then _G.print = saved_print end
  if io.write == console_write then io.write = saved_write end
  return res
end

-- What a chunk sees: the bot's globals (assignments go there), and `mw` at hand
-- without adding it to them.
local env = setmetatable({}, {
  __index = function(_, k)
    local v = _G[k]
    if v == nil and k == "mw" then return require "moonwire" end
    return v
  end,
  __newindex = _G,
})

local function script_name()
  local a = rawget(_G, "arg")
  local s = type(a) == "table" and type(a[0]) == "string" and a[0] or "moonwire"
  s = s:match("([^/]*)$"):gsub("%.lua$", ""):gsub("[^%w%._-]", "_")
  return s ~= "" and s or "moonwire"
end

local function on_peer(peer)
  local pending    -- the lines of this attacher's incomplete chunk
  peer:send("h", core.pid() .. " " .. script_name())
  peer:setHandler(function(p, kind, s)
    if kind == nil then return end            -- detached: nothing of it stays
    if kind == "i" then pending = nil return end   -- no chunk runs: drop a pending one
    if kind ~= "e" then return end
    local what, v = repl.step(pending, s, "=console", env)
    if what == "more" then pending = v; p:send("m") return end
    pending = nil
    if what == "error" then send(p, "x", v) return end
    local res = run_for(p, v)
    if res[1] then send(p, "r", repl.format(table.unpack(res, 2, res.n)))
    else
      -- the traceback ends at the chunk: the console's own frames below it are noise
      local msg = tostring(res[2]):gsub("\n%s*%[C%]: in function 'moonwire%.core%.consoleEval'.*$", "")
      send(p, "x", msg)
    end
  end)
end

local function on_refused(uid, pid)
  io.stderr:write(("moonwire: console: refused a peer of uid %d (pid %d): not the bot's uid\n"):format(uid, pid))
end

-- Sockets of bots that are gone (killed: nothing removed them).
local function sweep(dir)
  for _, name in ipairs(core.consoleList(dir) or {}) do
    local pid = tonumber(name:match("^(%d+)%-"))
    if pid and not core.pidAlive(pid) then os.remove(dir .. "/" .. name) end
  end
end

-- mw.console([path]): listen (once); the socket's path, or nil and why.
function M.start(p)
  if server then return path end
  if p ~= nil and type(p) ~= "string" then error("mw.console: a socket path (string) expected", 3) end
  if not p then
    local dir, err = core.consoleDir(true)
    if not dir then return nil, "mw.console: " .. err end
    sweep(dir)
    p = ("%s/%d-%s.sock"):format(dir, core.pid(), script_name())
  end
  local s, err = core.consoleListen(p, on_peer, on_refused)
  if not s then return nil, "mw.console: " .. err end
  server, path = s, p
  return p
end

return M
