-- A real terminal for the specs: a tmux session on its own socket, keys sent with
-- send-keys, the screen read with capture-pane. Waits poll the screen every 50 ms on the
-- luv loop, with a deadline: the screen is the only event a terminal gives.
local uv = require "luv"
local H = require "spec.support.helper"

local M = {}
local S = {}
S.__index = S

local function quote(a) return "'" .. tostring(a):gsub("'", "'\\''") .. "'" end

function S:tmux(...)
  local cmd = { "tmux", "-S", quote(self.sock) }
  for _, a in ipairs { ... } do cmd[#cmd + 1] = quote(a) end
  local p = io.popen(table.concat(cmd, " ") .. " 2>&1")
  local out = p:read("a")
  p:close()
  return out
end

-- keys as tmux send-keys takes them ("Enter", "C-d", "Up"; text that is no key name)
function S:keys(...) return self:tmux("send-keys", "-t", self.name, ...) end
-- text typed as it is (send-keys -l: "end" is not the End key)
function S:type(text) return self:tmux("send-keys", "-t", self.name, "-l", text) end
function S:pane() return self:tmux("capture-pane", "-p", "-t", self.name) end
-- the screen with its colours and attributes as escape sequences (capture-pane -e)
function S:pane_escaped() return self:tmux("capture-pane", "-p", "-e", "-t", self.name) end

-- Waits until the screen matches pattern; raises with the screen after timeout.
function S:wait(pattern, timeout)
  local found = false
  local tick = uv.new_timer()
  tick:start(0, 50, function() if self:pane():find(pattern) then found = true end end)
  H.run_until(function() return found end, (timeout or 10) * H.slow)
  tick:stop()
  tick:close()
  if not found then error(("no %q on the terminal:\n%s"):format(pattern, self:pane()), 2) end
end

function S:kill() self:tmux("kill-server") end

-- Starts `command` (a shell command line) in a new 120x30 terminal. After it ends the
-- terminal shows EXIT=<status> and stays for a while, so a spec can read its last screen.
function M.session(command)
  assert(os.execute("command -v tmux >/dev/null 2>&1"), "tmux is not installed (scripts/bootstrap.sh installs it)")
  local s = setmetatable({ name = "mwspec" .. uv.os_getpid(), sock = H.tmpdir() .. "/tmux.sock" }, S)
  s:tmux("new-session", "-d", "-s", s.name, "-x", "120", "-y", "30", command .. "; echo EXIT=$?; sleep 60")
  return s
end

return M
