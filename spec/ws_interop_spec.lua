-- Issue 3, interop: text and binary messages of 0 B to 16 MiB, both directions,
-- against Python's `websockets` server and Node's `ws` server, intact.
local H = require "spec.support.helper"

local SIZES = { 0, 1, 125, 126, 127, 65535, 65536, 16 * 1024 * 1024 }

local PEERS = {
  python = { H.python, "-u", H.src .. "/spec/servers/ws_py_peer.py" },
  node = { "node", H.src .. "/spec/servers/ws_node_peer.js" },
}

local function start_peer(name)
  local p = H.spawn(PEERS[name], { name = name .. " peer", env = { NODE_PATH = "/usr/share/nodejs" } })
  local _, port = p:wait_line("^PORT (%d+)$", 10)
  p.port = tonumber(port)
  return p
end

-- The client: for each size, one text and one binary message to /echo, each
-- compared with its echo; then, for each size, a connection to /send/<n> whose
-- server sends a text message of n "x" and a binary one of pattern bytes.
local CLIENT = [==[
local mw = require "moonwire"
local base = arg[1]
local sizes = {}
for s in arg[2]:gmatch("%d+") do sizes[#sizes + 1] = tonumber(s) end

local block = {}
for i = 0, 250 do block[#block + 1] = string.char((i * 7 + 2) % 251) end
block = table.concat(block)
local function pattern(n) return block:rep(n // 251 + 1):sub(1, n) end
local function textof(n) return ("\u{e9}"):rep(n // 2) .. ("a"):rep(n % 2) end -- UTF-8, n bytes

local phase2
local echo = mw.AsyncTcpConnection.new(base .. "/echo")
echo.maxPackageSize = 64 * 1024 * 1024
echo.maxSendBufferSize = 64 * 1024 * 1024
local i, step = 1, "text"
local function send_next(conn)
  local n = sizes[i]
  if step == "text" then conn:sendText(textof(n)) else conn:sendBinary(pattern(n)) end
end
echo.onWebSocketConnect = function(conn) send_next(conn) end
echo.onMessage = function(conn, data, kind)
  local n = sizes[i]
  local want = step == "text" and textof(n) or pattern(n)
  print(("ECHO %s %d %s %s"):format(step, n, kind, tostring(data == want)))
  if step == "text" then step = "binary" else step, i = "text", i + 1 end
  if sizes[i] then send_next(conn) else conn:close(1000, "done") end
end
echo.onError = function(_, code, msg) print("ERROR", code, msg) end
echo.onClose = function() print("ECHO-CLOSED"); phase2(1) end

phase2 = function(j)
  local n = sizes[j]
  if not n then return end
  local c = mw.AsyncTcpConnection.new(base .. "/send/" .. n)
  c.maxPackageSize = 64 * 1024 * 1024
  local got = 0
  c.onMessage = function(conn, data, kind)
    local want = kind == "text" and ("x"):rep(n) or pattern(n)
    print(("RECV %s %d %s"):format(kind, n, tostring(data == want)))
    got = got + 1
    if got == 2 then conn:close() end
  end
  c.onError = function(_, code, msg) print("ERROR", code, msg) end
  c.onClose = function() phase2(j + 1) end
  c:connect()
end
echo:connect()
]==]

for _, peer in ipairs { "python", "node" } do
  describe("ws interop with " .. peer, function()
    after_each(H.cleanup)

    it("echoes and receives text and binary messages of 0 B to 16 MiB intact", function()
      local srv = start_peer(peer)
      local res = H.run(CLIENT, { "ws://127.0.0.1:" .. srv.port, table.concat(SIZES, ",") },
        { timeout = 60 })
      H.assert_exit(res, 0)
      assert.same({}, H.grep(res.lines, "^ERROR"), H.describe(res))
      for _, n in ipairs(SIZES) do
        assert.equal(1, H.count(res.lines, ("^ECHO text %d text true$"):format(n)), "echo text " .. n .. "\n" .. H.describe(res))
        assert.equal(1, H.count(res.lines, ("^ECHO binary %d binary true$"):format(n)), "echo binary " .. n)
        assert.equal(1, H.count(res.lines, ("^RECV text %d true$"):format(n)), "recv text " .. n)
        assert.equal(1, H.count(res.lines, ("^RECV binary %d true$"):format(n)), "recv binary " .. n)
        -- the server saw each message with its kind and exact length
        assert.is_true(#srv:grep(("^MSG text %d "):format(n)) >= 1, "server text " .. n)
        assert.is_true(#srv:grep(("^MSG binary %d "):format(n)) >= 1, "server binary " .. n)
      end
      srv:wait_line("^CLOSE 1000 done$")
    end)
  end)
end
