-- Issue 13: permessage-deflate (RFC 7692) through the real binary. Interop against
-- Python's `websockets` and Node's `ws` with compression on (their defaults and the
-- variants of window bits and context takeover), every echo compared byte for byte and
-- the bytes on the wire counted; the option and its errors; hostile servers (answers
-- with bad parameters, RSV1 where it is not allowed, a corrupt stream, a deflate bomb).
local H = require "spec.support.helper"
local W = require "spec.support.ws_raw"

local SIZES = { 0, 1, 31, 32, 200, 1000, 16384, 65536, 262144 }

local function start_peer(cmd, name)
  local p = H.spawn(cmd, { name = name, env = { NODE_PATH = "/usr/share/nodejs" } })
  local _, port = p:wait_line("^PORT (%d+)$", 10)
  p.url = "ws://127.0.0.1:" .. port
  return p
end

local function python(...)
  return start_peer({ H.python, "-u", H.src .. "/spec/servers/ws_py_peer.py", ... }, "ws_py_peer.py")
end

local function node(pmd)
  return start_peer({ "node", H.src .. "/spec/servers/ws_node_peer.js", "--pmd", pmd }, "ws_node_peer.js")
end

-- For each size, a JSON-like text message and a binary one of pattern bytes to /echo,
-- each compared with its echo; then /send/<n>, whose server sends first. Prints what was
-- agreed, each outcome, and the bytes on the wire against the payload bytes.
local CLIENT = [==[
local mw = require "moonwire"
local base, opts = arg[1], load("return " .. arg[3])()
local sizes = {}
for s in arg[2]:gmatch("%d+") do sizes[#sizes + 1] = tonumber(s) end
local block = {}
for i = 0, 250 do block[#block + 1] = string.char((i * 7 + 2) % 251) end
block = table.concat(block)
local function pattern(n) return block:rep(n // 251 + 1):sub(1, n) end
local function json(n)
  local t, i = {}, 0
  while #table.concat(t) < n do
    i = i + 1
    t[#t + 1] = ('{"id":%d,"sym":"BTC-USD","px":%d.%02d,"qty":%d}'):format(i, 60000 + i % 97, i % 100, i % 13)
  end
  return table.concat(t):sub(1, n)
end
local payload = 0
local phase2
local echo = mw.AsyncTcpConnection.new(base .. "/echo")
echo.maxPackageSize = 8 * 1024 * 1024
echo.maxSendBufferSize = 8 * 1024 * 1024
if opts ~= nil then echo.websocketCompression = opts end
local i, step = 1, "text"
local function send_next(conn)
  local n = sizes[i]
  payload = payload + n
  if step == "text" then conn:sendText(json(n)) else conn:sendBinary(pattern(n)) end
end
echo.onWebSocketConnect = function(conn)
  print("EXT " .. conn.websocketExtensions)
  send_next(conn)
end
echo.onMessage = function(conn, data, kind)
  local n = sizes[i]
  local want = step == "text" and json(n) or pattern(n)
  print(("ECHO %s %d %s %s"):format(step, n, kind, tostring(data == want)))
  if step == "text" then step = "binary" else step, i = "text", i + 1 end
  if sizes[i] then send_next(conn) else
    print(("WIRE written=%d read=%d payload=%d"):format(conn.bytesWritten, conn.bytesRead, payload))
    conn:close(1000, "done")
  end
end
echo.onError = function(_, code, msg) print("ERROR " .. code .. " " .. msg) end
echo.onClose = function() print("ECHO-CLOSED"); phase2(1) end
phase2 = function(j)
  local n = sizes[j]
  if not n then return end
  local c = mw.AsyncTcpConnection.new(base .. "/send/" .. n)
  c.maxPackageSize = 8 * 1024 * 1024
  if opts ~= nil then c.websocketCompression = opts end
  local got = 0
  c.onMessage = function(conn, data, kind)
    got = got + 1
    local want = got == 1 and ("x"):rep(n) or pattern(n)
    print(("SENT %d %s %s"):format(n, kind, tostring(data == want)))
    if got == 2 then conn:close() end
  end
  c.onError = function(_, code, msg) print("ERROR " .. code .. " " .. msg) end
  c.onClose = function() phase2(j + 1) end
  c:connect()
end
echo:connect()
]==]

local function run_client(peer, opts)
  local sizes = table.concat(SIZES, " ")
  local res = H.run(CLIENT, { peer.url, sizes, opts or "nil" }, { timeout = 60 })
  H.assert_exit(res, 0)
  assert.equal("", res.stderr)
  assert.same({}, H.grep(res.lines, "^ERROR"), H.describe(res))
  for _, n in ipairs(SIZES) do
    assert.same({ ("ECHO text %d text true"):format(n) }, H.grep(res.lines, ("^ECHO text %d "):format(n)), H.describe(res))
    assert.same({ ("ECHO binary %d binary true"):format(n) }, H.grep(res.lines, ("^ECHO binary %d "):format(n)))
    assert.same({ ("SENT %d text true"):format(n), ("SENT %d binary true"):format(n) },
      H.grep(res.lines, ("^SENT %d "):format(n)), H.describe(res))
  end
  local w, r, p = (H.grep(res.lines, "^WIRE ")[1] or ""):match("written=(%d+) read=(%d+) payload=(%d+)")
  assert.is_string(w, H.describe(res))
  return res, { written = tonumber(w), read = tonumber(r), payload = tonumber(p) },
    (H.grep(res.lines, "^EXT ")[1] or ""):sub(5)
end

-- The server's answer as it printed it, for the first connection.
local function server_ext(peer)
  local _, ext = peer:wait_line("^EXT (.*)$", 10)
  return ext
end

describe("permessage-deflate interop (issue 13)", function()
  after_each(H.cleanup)

  local VARIANTS = {
    { "Python websockets, its defaults", function() return python() end,
      "^permessage%-deflate; server_max_window_bits=12; client_max_window_bits=12$" },
    { "Python websockets, server_max_window_bits=10", function() return python("--server-max-window-bits", "10") end,
      "^permessage%-deflate; server_max_window_bits=10; client_max_window_bits=15$" },
    { "Python websockets, both no_context_takeover",
      function() return python("--server-no-context-takeover", "--client-no-context-takeover") end,
      "^permessage%-deflate; server_max_window_bits=15; client_max_window_bits=15; " ..
        "server_no_context_takeover; client_no_context_takeover$" },
    { "Node ws, perMessageDeflate with ws's defaults (threshold 0)", function() return node('{"threshold":0}') end,
      "^permessage%-deflate; server_max_window_bits=15; client_max_window_bits=15$" },
    { "Node ws, serverNoContextTakeover", function() return node('{"serverNoContextTakeover":true,"threshold":0}') end,
      "^permessage%-deflate; server_max_window_bits=15; client_max_window_bits=15; server_no_context_takeover$" },
    { "Node ws, clientNoContextTakeover", function() return node('{"clientNoContextTakeover":true,"threshold":0}') end,
      "^permessage%-deflate; server_max_window_bits=15; client_max_window_bits=15; client_no_context_takeover$" },
    { "Node ws, serverMaxWindowBits 9 and zlibDeflateOptions level 9",
      function() return node('{"serverMaxWindowBits":9,"zlibDeflateOptions":{"level":9,"memLevel":9},"threshold":0}') end,
      "^permessage%-deflate; server_max_window_bits=9; client_max_window_bits=15$" },
  }

  for _, v in ipairs(VARIANTS) do
    it(v[1] .. ": every message intact both ways, compressed on the wire", function()
      local peer = v[2]()
      local res, wire, ext = run_client(peer)
      assert.matches(v[3], ext, nil, nil, H.describe(res))
      assert.is_not.equal("-", server_ext(peer))
      -- JSON and pattern bytes compress: well under the payload each way
      assert.is_true(wire.written < wire.payload * 0.6, ("written %d of payload %d"):format(wire.written, wire.payload))
      assert.is_true(wire.read < wire.payload * 0.6, ("read %d of payload %d"):format(wire.read, wire.payload))
    end)
  end

  it("websocketCompression = false: no offer, nothing agreed, the payload goes uncompressed", function()
    local peer = python()
    local res, wire, ext = run_client(peer, "false")
    assert.equal("", ext, H.describe(res))
    assert.equal("-", server_ext(peer))
    assert.is_true(wire.written > wire.payload and wire.read > wire.payload, H.describe(res))
  end)

  it("a table offers what it names: client_max_window_bits = 9, server_max_window_bits = 11, level 1", function()
    local peer = python()
    local res, wire, ext = run_client(peer, "{ client_max_window_bits = 9, server_max_window_bits = 11, level = 1 }")
    assert.equal("permessage-deflate; server_max_window_bits=11; client_max_window_bits=9", ext, H.describe(res))
    assert.is_true(wire.written < wire.payload * 0.6)
  end)

  it("client_max_window_bits = 8 agreed: moonwire sends uncompressed (zlib cannot make that window), still inflates", function()
    local peer = python()
    local res, wire, ext = run_client(peer, "{ client_max_window_bits = 8 }")
    assert.equal("permessage-deflate; server_max_window_bits=12; client_max_window_bits=8", ext, H.describe(res))
    assert.is_true(wire.written > wire.payload, H.describe(res))
    assert.is_true(wire.read < wire.payload * 0.6, H.describe(res))
  end)
end)

describe("permessage-deflate memory (issue 13)", function()
  after_each(H.cleanup)

  -- 50 messages of JSON, then a quiet wait: websocketCompressionMemory is read after
  -- the 1st and the 50th echo, then every 0.1 s until it falls or 3 s have passed.
  local MEM = [==[
local mw = require "moonwire"
local c = mw.AsyncTcpConnection.new(arg[1] .. "/echo")
local msg = ('{"id":1,"sym":"BTC-USD","px":60000.5,"qty":3}'):rep(20)
local n = 0
c.onWebSocketConnect = function(conn) print("EXT " .. conn.websocketExtensions); conn:send(msg) end
c.onMessage = function(conn)
  n = n + 1
  if n == 1 then print("FIRST " .. conn.websocketCompressionMemory) end
  if n < 50 then conn:send(msg) return end
  local busy = conn.websocketCompressionMemory
  print("BUSY " .. busy)
  local tries = 0
  local id
  id = mw.Timer.add(0.1, function()
    tries = tries + 1
    local now = conn.websocketCompressionMemory
    if now < busy or tries >= 30 then
      print(("QUIET %d after %d"):format(now, tries))
      mw.Timer.del(id)
      conn:close()
    end
  end)
end
c.onError = function(_, code, m) print("ERROR " .. code .. " " .. m) end
c:connect()
]==]

  it("without context takeover the idle connection gives zlib's memory back; with it, it keeps the history", function()
    local nct = python("--server-no-context-takeover", "--client-no-context-takeover")
    local res = H.run(MEM, { nct.url })
    H.assert_exit(res, 0)
    assert.matches("no_context_takeover", res.stdout)
    local first = tonumber(res.stdout:match("FIRST (%d+)"))
    local busy = tonumber(res.stdout:match("BUSY (%d+)"))
    local quiet, tries = res.stdout:match("QUIET (%d+) after (%d+)")
    assert.is_true(first > 0 and busy > 0, H.describe(res))
    assert.is_true(tonumber(quiet) < busy, H.describe(res))
    assert.is_true(tonumber(tries) < 30, H.describe(res))
    local keep = python()
    res = H.run(MEM, { keep.url })
    H.assert_exit(res, 0)
    busy = tonumber(res.stdout:match("BUSY (%d+)"))
    quiet, tries = res.stdout:match("QUIET (%d+) after (%d+)")
    -- context takeover: the same memory after the 1st and the 50th message (nothing
    -- grows per message), and kept while quiet (the next message needs the history)
    assert.equal(tonumber(res.stdout:match("FIRST (%d+)")), busy, H.describe(res))
    assert.equal(busy, tonumber(quiet), H.describe(res))
    assert.equal("30", tries)
  end)
end)

describe("websocketCompression, the option (issue 13)", function()
  after_each(H.cleanup)

  it("reads as the offer with its defaults, false when off; bad values raise at the script's line", function()
    local res = H.run([==[
      local mw = require "moonwire"
      local c = mw.AsyncTcpConnection.new("ws://127.0.0.1:1/")
      local t = c.websocketCompression
      print("DEFAULT", t.client_max_window_bits, t.server_max_window_bits, t.client_no_context_takeover,
        t.server_no_context_takeover, t.level, t.memLevel, t.threshold)
      c.websocketCompression = { server_max_window_bits = 10, server_no_context_takeover = true, threshold = 0 }
      t = c.websocketCompression
      print("SET", t.client_max_window_bits, t.server_max_window_bits, t.server_no_context_takeover, t.threshold)
      c.websocketCompression = false
      print("OFF", c.websocketCompression)
      print("EXT", c.websocketExtensions, c.websocketCompressionMemory)
      for _, bad in ipairs { "'yes'", "{ level = 10 }", "{ memLevel = 0 }", "{ client_max_window_bits = 16 }",
          "{ server_max_window_bits = 7 }", "{ server_max_window_bits = true }", "{ threshold = -1 }",
          "{ level = 1.5 }", "{ colour = 1 }", "{ server_no_context_takeover = 1 }" } do
        local ok, err = pcall(load("local c = ... c.websocketCompression = " .. bad, "=bot.lua"), c)
        print("BAD", bad, ok, err)
      end
      c.websocketExtensions = "x"
    ]==])
    assert.same({ "DEFAULT\ttrue\tnil\tfalse\tfalse\t6\t4\t32" }, H.grep(res.lines, "^DEFAULT"), H.describe(res))
    -- threshold 0 is 1: every message but the empty one
    assert.same({ "SET\ttrue\t10\ttrue\t1" }, H.grep(res.lines, "^SET"))
    assert.same({ "OFF\tfalse" }, H.grep(res.lines, "^OFF"))
    assert.same({ "EXT\tnil\t0" }, H.grep(res.lines, "^EXT"))
    local bad = H.grep(res.lines, "^BAD")
    assert.equal(10, #bad, H.describe(res))
    for _, l in ipairs(bad) do
      assert.matches("\tfalse\tbot%.lua:1: websocketCompression", l)
    end
    assert.matches("must be true, false or a table", bad[1])
    assert.matches("level", bad[2])
    assert.matches("memLevel", bad[3])
    assert.matches("client_max_window_bits", bad[4])
    assert.matches("server_max_window_bits", bad[5])
    assert.matches("server_max_window_bits must be an integer 8%.%.15", bad[6])
    assert.matches("threshold must be an integer >= 0", bad[7])
    assert.matches("level must be an integer 1%.%.9", bad[8])
    assert.matches("unknown field colour", bad[9])
    assert.matches("server_no_context_takeover must be a boolean", bad[10])
    assert.matches("websocketExtensions is read%-only", res.stderr)
  end)
end)

-- Against the raw peer: the answer it is told to give, and frames it is told to send
-- right after the 101.
local CLIENT_RAW = [[
local mw = require "moonwire"
local c = mw.AsyncTcpConnection.new(arg[1])
c.maxPackageSize = 1024 * 1024
local function hwm()
  for l in io.lines("/proc/self/status") do
    local v = l:match("^VmHWM:%s+(%d+)")
    if v then return tonumber(v) end
  end
end
local hwm0
c.onWebSocketConnect = function(conn) hwm0 = hwm(); print("WSCONNECT " .. conn.websocketExtensions) end
c.onMessage = function(_, d) print("MSG " .. #d) end
c.onError = function(_, code, msg) print("ERROR " .. code .. " " .. msg) end
c.onClose = function()
  print("CLOSE")
  print("HWM " .. (hwm() - (hwm0 or 0)))
end
c:connect()
]]

local function raw_run(args)
  local srv = W.peer(args)
  local res = H.run(CLIENT_RAW, { srv.url })
  H.assert_exit(res, 0)
  assert.equal("", res.stderr)
  return res, srv
end

local PMD = "Sec-WebSocket-Extensions: permessage-deflate"

describe("permessage-deflate against hostile servers (issue 13)", function()
  after_each(H.cleanup)

  local ANSWERS = {
    { "a window out of 8..15", PMD .. "; server_max_window_bits=16", "server_max_window_bits" },
    { "an unknown parameter", PMD .. "; colour=blue", "colour" },
    { "a parameter given twice", PMD .. "; server_no_context_takeover; server_no_context_takeover",
      "server_no_context_takeover" },
    { "a value for a no_context_takeover", PMD .. "; client_no_context_takeover=1", "client_no_context_takeover" },
    { "permessage-deflate answered twice", PMD .. ", permessage-deflate", "permessage%-deflate" },
    { "an extension that was not offered", "Sec-WebSocket-Extensions: x-webkit-deflate-frame", "x%-webkit%-deflate%-frame" },
    { "a leading zero", PMD .. "; client_max_window_bits=09", "client_max_window_bits" },
  }
  for _, a in ipairs(ANSWERS) do
    it("refuses " .. a[1] .. ": HANDSHAKE_FAIL naming it, onClose once", function()
      local res = raw_run({ "--header", a[2] })
      local err = H.grep(res.lines, "^ERROR ")
      assert.equal(1, #err, H.describe(res))
      assert.matches("^ERROR 5 websocket handshake with ws://127%.0%.0%.1:%d+ failed: .*" .. a[3], err[1])
      assert.same({}, H.grep(res.lines, "^WSCONNECT"))
      assert.equal(1, #H.grep(res.lines, "^CLOSE$"))
    end)
  end

  local FRAMES = {
    -- FIN|RSV1|ping, empty
    { "RSV1 on a ping", true, "\\xc9\\x00", "1002", "PROTOCOL_FAIL" },
    -- text, FIN clear; then a continuation with RSV1
    { "RSV1 on a continuation", true, "\\x01\\x01a\\xc0\\x01b", "1002", "PROTOCOL_FAIL" },
    -- RSV1 on a text frame when nothing was agreed
    { "RSV1 when nothing was agreed", false, "\\xc1\\x05hello", "1002", "PROTOCOL_FAIL" },
    -- RSV1 text whose payload is no DEFLATE stream (block type 3 is reserved)
    { "a corrupt DEFLATE stream", true, "\\xc1\\x04\\xff\\xff\\xff\\xff", "1007", "PROTOCOL_FAIL" },
  }
  for _, f in ipairs(FRAMES) do
    it("fails on " .. f[1] .. " with " .. f[4] .. ", onError once, onClose once", function()
      local args = { "--body", f[3] }
      if f[2] then table.insert(args, 1, PMD); table.insert(args, 1, "--header") end
      local res, srv = raw_run(args)
      assert.equal(1, #H.grep(res.lines, "^ERROR 6 "), H.describe(res))
      assert.same({}, H.grep(res.lines, "^MSG"))
      assert.equal(1, #H.grep(res.lines, "^CLOSE$"))
      srv:wait_line("^WSCLOSE 1 " .. f[4] .. " ")
    end)
  end

  it("a deflate bomb (16 KiB that inflate to 16 MiB) stops at maxPackageSize with 1009, memory bounded", function()
    -- the frame, built by zlib itself: 16 MiB of zeros, raw deflate, the 00 00 ff ff tail removed
    local gen = io.popen(H.python .. [[ -c "
import zlib, sys
z = zlib.compressobj(9, zlib.DEFLATED, -15)
p = z.compress(bytes(16 << 20)) + z.flush(zlib.Z_SYNC_FLUSH)
p = p[:-4]
h = bytes([0xc2, 127]) + len(p).to_bytes(8, 'big') if len(p) > 65535 else bytes([0xc2, 126]) + len(p).to_bytes(2, 'big')
sys.stdout.write(''.join('\\\\x%02x' % b for b in h + p))
"]])
    local body = gen:read("a")
    gen:close()
    assert.is_true(#body > 100 and #body < 400 * 1024, #body)
    local srv = W.peer({ "--header", PMD, "--body", body })
    local res = H.run(CLIENT_RAW, { srv.url })
    H.assert_exit(res, 0)
    local err = H.grep(res.lines, "^ERROR ")
    assert.equal(1, #err, H.describe(res))
    assert.matches("^ERROR 7 ", err[1])
    assert.same({}, H.grep(res.lines, "^MSG"))
    srv:wait_line("^WSCLOSE 1 1009 ")
    -- the limit is 1 MiB: the peak stays far below the 16 MiB the bomb holds
    local hwm = tonumber((H.grep(res.lines, "^HWM ")[1] or ""):match("%d+"))
    assert.is_number(hwm, H.describe(res))
    assert.is_true(hwm < 6 * 1024, "peak resident grew by " .. hwm .. " KiB")
  end)
end)
