-- Helpers of the hot reload specs (spec/reload*_spec.lua): saving a new version of a
-- script as editors do, and waiting for what moonwire prints on stderr about reloads.
-- Everything waits on events with a deadline, through spec.support.helper.
local H = require "spec.support.helper"

local R = {}

-- The prefix H.write_script puts on line 1 (same line: line numbers are unchanged).
R.PREFIX = 'io.stdout:setvbuf("line") '

-- A new version saved as editors do: written to a temp file in the same directory,
-- then renamed over the old one.
function R.replace(path, source)
  local tmp = path .. ".swp~"
  local f = assert(io.open(tmp, "wb"))
  f:write(R.PREFIX, source)
  f:close()
  assert(os.rename(tmp, path))
end

-- A new version written in place (truncate, write, close).
function R.overwrite(path, source)
  local f = assert(io.open(path, "wb"))
  f:write(R.PREFIX, source)
  f:close()
end

-- Waits for `pattern` on the process's stderr after what earlier waits consumed;
-- returns the match. Raises with the output on a timeout.
function R.wait_err(p, pattern, timeout)
  p.errcursor = p.errcursor or 1
  local s, e
  H.run_until(function()
    s, e = p.errbuf:find(pattern, p.errcursor)
    return s ~= nil or (p.exited and p.err_eof)
  end, (timeout or 10) * H.slow)
  if not s then
    error(("no stderr matching %q from %s"):format(pattern, p:describe()), 2)
  end
  p.errcursor = e + 1
  return p.errbuf:sub(s, e)
end

function R.wait_reloaded(p, timeout)
  return R.wait_err(p, "moonwire: reloaded [^\n]+\n", timeout)
end

function R.count_err(p, pattern)
  local n = 0
  for _ in p.errbuf:gmatch(pattern) do n = n + 1 end
  return n
end

-- Starts spec/servers/ws_counter.py (streams numbered messages, prints CONNECT / MSG /
-- CLOSE lines); returns the process with .port and .url set.
function R.ws_counter()
  local p = H.spawn({ H.python, "-u", H.src .. "/spec/servers/ws_counter.py" },
    { name = "ws_counter.py" })
  local _, port = p:wait_line("^PORT (%d+)$", 10)
  p.port = tonumber(port)
  p.url = "ws://127.0.0.1:" .. port
  return p
end

-- Starts `source` as bot.lua (without --watch); p.path is the script, for R.replace.
function R.start(source)
  local path = H.write_script(source, "bot.lua")
  local p = H.start(nil, {}, { path = path })
  p.path = path
  return p
end

-- Ends moonwire with SIGTERM and checks a clean exit 0.
function R.stop(p)
  p:kill("sigterm")
  local code = p:wait(20)
  H.assert_exit({ code = p.code, signal = p.signal, timed_out = code == nil,
    stdout = p:stdout_text(), stderr = p:stderr_text() }, 0)
end

return R
