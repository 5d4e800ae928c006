-- moonwire: the module scripts require. The C core (moonwire.core) provides
-- connections, timers and the loop; this file adds Worker, Ws and pipe().
local core = require "moonwire.core"

local M = {
  AsyncTcpConnection = core.AsyncTcpConnection,
  Timer = core.Timer,
  errors = core.errors,
  now = core.now,
  version = core.version,
  -- Workerman's constants, same values: the first byte of a text / binary frame
  Ws = { BINARY_TYPE_BLOB = "\x81", BINARY_TYPE_ARRAYBUFFER = "\x82" },
}

M.Worker = require("moonwire.worker")(core)

-- Workerman's pipe(): everything received on conn is sent on dest, with
-- backpressure both ways; closing one closes the other.
function core.connMethods.pipe(conn, dest)
  conn.onMessage = function(_, data) dest:send(data) end
  conn.onClose = function() dest:close() end
  dest.onBufferFull = function() conn:pauseRecv() end
  dest.onBufferDrain = function() conn:resumeRecv() end
  return dest
end

return M
