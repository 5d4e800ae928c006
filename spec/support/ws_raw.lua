-- Support for the ws client specs: starts spec/servers/ws_raw_peer.py, reads its event
-- lines, and gives client scripts a prelude that prints every callback as one line.
-- Knows nothing of moonwire's C code.
local H = require "spec.support.helper"

local W = {}

-- Starts the raw WebSocket peer with command-line options; returns the process with
-- .port and .url (ws://127.0.0.1:<port>) set. opts.netns: in a network namespace of
-- its own (needs root), whose loopback is brought up first: a fixed port (--port 80)
-- cannot collide with anything there; p.netns is then the argv prefix that runs a
-- command in that namespace (H.start's opts.prefix).
function W.peer(args, host, opts)
  local argv = { H.python, "-u", H.src .. "/spec/servers/ws_raw_peer.py" }
  if opts and opts.netns then
    table.move(argv, 1, #argv, 6)
    argv[1], argv[2], argv[3], argv[4] = "unshare", "--net", "sh", "-c"
    argv[5] = 'ip link set lo up && exec "$0" "$@"'
  end
  if host then argv[#argv + 1] = "--host"; argv[#argv + 1] = host end
  for _, a in ipairs(args or {}) do argv[#argv + 1] = tostring(a) end
  local p = H.spawn(argv, { name = "ws_raw_peer.py" })
  local _, port = p:wait_line("^PORT (%d+)$", 10)
  p.port = tonumber(port)
  p.url = "ws://" .. (host and host:find(":") and "[" .. host .. "]" or "127.0.0.1") .. ":" .. port
  -- unshare and sh exec: the pid is the peer's, and its namespace is the one made
  if opts and opts.netns then p.netns = { "nsenter", "--net=/proc/" .. p.pid .. "/ns/net" } end
  return p
end

-- Sends a stdin command to the peer (`DO 1 text:hi`, `DO * drop`).
function W.command(peer, line) peer:send(line .. "\n") end

-- The peer's FRAME lines for connection id, parsed, in arrival order.
function W.frames(peer, id)
  local r = {}
  for _, l in ipairs(peer.lines) do
    local cid, op, len, fin, rsv, mask, payload =
      l:match("^FRAME (%d+) (%S+) (%d+) fin=(%d) rsv=(%d) mask=(%S+) ?(.*)$")
    if cid and tonumber(cid) == id then
      r[#r + 1] = { op = op, len = tonumber(len), fin = fin == "1", rsv = tonumber(rsv),
                    mask = mask, payload = payload }
    end
  end
  return r
end

-- "op payload" of each frame, for assert.same.
function W.frame_list(peer, id)
  local r = {}
  for _, f in ipairs(W.frames(peer, id)) do r[#r + 1] = f.op .. " " .. f.payload end
  return r
end

-- The lines of the peer for connection id with one of the given event names.
function W.events(peer, id, names)
  local want = {}
  for _, n in ipairs(names) do want[n] = true end
  local r = {}
  for _, l in ipairs(peer.lines) do
    local ev, cid = l:match("^(%S+) (%d+)")
    if ev and want[ev] and tonumber(cid) == id then r[#r + 1] = l end
  end
  return r
end

-- Escaping shared by the peer and the prelude: printable ASCII as is, backslash doubled,
-- anything else \xHH.
function W.esc(s)
  return (s:gsub(".", function(c)
    local b = c:byte()
    if b == 92 then return "\\\\" end
    if b >= 32 and b < 127 then return c end
    return ("\\x%02x"):format(b)
  end))
end

-- A client script's first lines: `mw`, `Ws`, `esc`, and trace(conn) that prints each
-- callback as one line (CONNECT, WSCONNECT, MSG kind data, PING p, PONG p,
-- WSCLOSE code reason, ERROR code msg, CLOSE), and open(url) = trace(new(url)).
W.PRELUDE = [==[
local mw = require "moonwire"
local Ws = mw.Ws
local function esc(s)
  return (s:gsub(".", function(c)
    local b = c:byte()
    if b == 92 then return "\\\\" end
    if b >= 32 and b < 127 then return c end
    return ("\\x%02x"):format(b)
  end))
end
local function trace(c, tag)
  tag = tag and (tag .. " ") or ""
  c.onConnect = function() print(tag .. "CONNECT") end
  c.onWebSocketConnect = function() print(tag .. "WSCONNECT") end
  c.onMessage = function(_, d, k) print(tag .. "MSG " .. tostring(k) .. " " .. esc(d)) end
  c.onWebSocketPong = function(_, p) print(tag .. "PONG " .. esc(p)) end
  c.onWebSocketClose = function(_, code, r) print(tag .. "WSCLOSE " .. code .. " " .. esc(r)) end
  c.onError = function(_, code, m) print(tag .. "ERROR " .. code .. " " .. m) end
  c.onClose = function() print(tag .. "CLOSE") end
  return c
end
local function open(url, tag) return trace(mw.AsyncTcpConnection.new(url or arg[1]), tag) end
]==]

function W.script(body) return W.PRELUDE .. body end

-- The lines a traced client printed that are events (all but the script's own output
-- when `only` is nil; with a tag, only that connection's, tag removed).
local EVENTS = { CONNECT = 1, WSCONNECT = 1, MSG = 1, PING = 1, PONG = 1, WSCLOSE = 1,
                 ERROR = 1, CLOSE = 1 }
function W.client_events(lines, tag)
  local r = {}
  for _, l in ipairs(lines) do
    local s = l
    if tag then
      s = l:match("^" .. tag:gsub("%p", "%%%0") .. " (.*)$")
    end
    if s and EVENTS[s:match("^(%S+)")] then r[#r + 1] = s end
  end
  return r
end

return W
