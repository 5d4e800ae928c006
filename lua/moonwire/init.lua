-- moonwire: the module scripts require. The C core (moonwire.core) provides
-- connections, timers, the loop and reload; this file adds Worker, Ws,
-- pipe(), mw.state and the Lua half of hot reload.
local core = require "moonwire.core"

local M = {
  AsyncTcpConnection = core.AsyncTcpConnection,
  Timer = core.Timer,
  errors = core.errors,
  now = core.now,
  workerId = core.workerId,
  version = core.version,
  reload = core.reload,
  connections = core.connections,
  stats = core.stats,
  histogram = core.histogram,
  metricsText = core.metricsText,
  metricsBlob = core.metricsBlob,
  metricsRender = core.metricsRender,
  -- Workerman's constants, same values (the first byte of a text / binary frame)
  Ws = core.Ws,
}

-- mw.console([path]): listen for `moonwire attach` (moonwire/console.lua)
function M.console(path) return require("moonwire.console").start(path) end

local Worker = require("moonwire.worker")(core)
M.Worker = Worker

-- mw.spawn, mw.sleep, mw.connect, conn:receive, mw.receiveAny (sequential scripts)
require("moonwire.co")(core, M)
local co_reload = M._coReload
M._coReload = nil

-- Workerman's pipe(): everything received on conn is sent on dest, with
-- backpressure both ways; closing one closes the other.
local function check_conn(v, i)
  if getmetatable(v) ~= "AsyncTcpConnection" then
    error(("bad argument #%d to 'pipe' (AsyncTcpConnection expected, got %s)"):format(i, type(v)), 3)
  end
end

function core.connMethods.pipe(conn, dest)
  check_conn(conn, 1)
  check_conn(dest, 2)
  conn.onMessage = function(_, data) dest:send(data) end
  conn.onClose = function() dest:close() end
  dest.onBufferFull = function() conn:pauseRecv() end
  dest.onBufferDrain = function() conn:resumeRecv() end
  return dest
end

-- mw.state(key, initial): a table that survives reloads (this module is
-- loaded once per process; a reload runs the script, not this file).
local states = {}
function M.state(key, initial)
  if key == nil or key ~= key then error("mw.state: the key must not be nil or NaN", 2) end
  local t = states[key]
  if t == nil then
    if initial ~= nil and type(initial) ~= "table" then
      error("mw.state: the initial value must be a table", 2)
    end
    t = initial or {}
    states[key] = t
  end
  return t
end

-- Modules the script loaded from its own directory: reloaded with it, and
-- watched by --watch. name -> file.
local function local_path()
  local script = core.scriptPath()
  if not script then return nil end
  local dir = script:match("^(.*)/[^/]*$") or "."
  return dir .. "/?.lua;" .. dir .. "/?/init.lua"
end

local function local_modules()
  local path = local_path()
  if not path then return {} end
  local found = {}
  for name in pairs(package.loaded) do
    if type(name) == "string" and not name:find("^moonwire") then
      local file = package.searchpath(name, path)
      if file then found[name] = file end
    end
  end
  return found
end

-- Names required since the last reload began, loaded or not: a module that
-- fails to compile is not in package.loaded, yet a fix to it must be seen by
-- --watch, for the next good save to apply. A searcher that finds nothing.
local required = {}
table.insert(package.searchers, 1, function(name)
  if type(name) == "string" and not name:find("^moonwire") then required[name] = true end
  return nil
end)

-- The globals as they were before a reload: the new script assigns globals as
-- it runs (`function handler() ... end`), and old callbacks that call them
-- must not see the new ones when the reload fails. Raw, so a strict-mode
-- metatable on _G plays no part.
local function snapshot(t)
  local s = {}
  for k, v in next, t do s[k] = v end
  return s
end

local function restore(t, s)
  for k in next, t do
    if s[k] == nil then rawset(t, k, nil) end -- clearing a field is allowed during next
  end
  for k, v in next, s do rawset(t, k, v) end
end

local saved, saved_globals
core.setReloadHook(function(phase)
  if phase == "begin" then
    required = {}
    saved_globals = snapshot(_G)
    saved = {}
    for name in pairs(local_modules()) do
      saved[name] = package.loaded[name]
      package.loaded[name] = nil
    end
    Worker._reload.begin()
    co_reload.begin()
  elseif phase == "abort" then
    for name in pairs(local_modules()) do package.loaded[name] = nil end
    for name, mod in pairs(saved or {}) do package.loaded[name] = mod end
    if saved_globals then restore(_G, saved_globals) end
    saved, saved_globals = nil, nil
    Worker._reload.abort()
    co_reload.abort()
  elseif phase == "files" then
    local set, files = local_modules(), {}
    local path = local_path()
    for name in pairs(required) do
      set[name] = set[name] or (path and package.searchpath(name, path))
    end
    for _, file in pairs(set) do
      if file then files[#files + 1] = file end
    end
    table.sort(files)
    return files
  else
    if phase == "commit" then saved, saved_globals = nil, nil end
    Worker._reload[phase]()
    if phase == "commit" then co_reload.commit() end
  end
end)

return M
