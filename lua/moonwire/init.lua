-- moonwire: the module scripts require. The C core (moonwire.core) provides
-- connections, timers, the loop and reload; this file adds Worker, Ws,
-- pipe(), mw.state and the Lua half of hot reload.
local core = require "moonwire.core"

local M = {
  AsyncTcpConnection = core.AsyncTcpConnection,
  Timer = core.Timer,
  errors = core.errors,
  now = core.now,
  version = core.version,
  reload = core.reload,
  -- Workerman's constants, same values: the first byte of a text / binary frame
  Ws = { BINARY_TYPE_BLOB = "\x81", BINARY_TYPE_ARRAYBUFFER = "\x82" },
}

local Worker = require("moonwire.worker")(core)
M.Worker = Worker

-- Workerman's pipe(): everything received on conn is sent on dest, with
-- backpressure both ways; closing one closes the other.
function core.connMethods.pipe(conn, dest)
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
local function local_modules()
  local script = core.scriptPath()
  if not script then return {} end
  local dir = script:match("^(.*)/[^/]*$") or "."
  local path = dir .. "/?.lua;" .. dir .. "/?/init.lua"
  local found = {}
  for name in pairs(package.loaded) do
    if type(name) == "string" and not name:find("^moonwire") then
      local file = package.searchpath(name, path)
      if file then found[name] = file end
    end
  end
  return found
end

local saved
core.setReloadHook(function(phase)
  if phase == "begin" then
    saved = {}
    for name in pairs(local_modules()) do
      saved[name] = package.loaded[name]
      package.loaded[name] = nil
    end
    Worker._reload.begin()
  elseif phase == "abort" then
    for name in pairs(local_modules()) do package.loaded[name] = nil end
    for name, mod in pairs(saved or {}) do package.loaded[name] = mod end
    saved = nil
    Worker._reload.abort()
  elseif phase == "files" then
    local files = {}
    for _, file in pairs(local_modules()) do files[#files + 1] = file end
    table.sort(files)
    return files
  else
    if phase == "commit" then saved = nil end
    Worker._reload[phase]()
  end
end)

return M
