-- Issue 3, opening handshake: the request moonwire writes, the responses it refuses and
-- accepts, handshakeTimeout, frames in the same write as the 101, the chosen subprotocol,
-- onWebSocketConnect's response, and sends queued before the handshake completes.
-- The server is spec/servers/ws_raw_peer.py on a loopback ephemeral port.
local H = require "spec.support.helper"
local W = require "spec.support.ws_raw"

-- A client that connects to arg[1], traces every callback, and closes with 1000 right
-- after the handshake.
local OPEN_AND_CLOSE = W.script [[
local c = open()
c.onWebSocketConnect = function(conn) print("WSCONNECT"); conn:close(1000, "bye") end
c:connect()
]]

-- The version `moonwire --version` prints ("moonwire 0.1.0 (Lua 5.4)").
local VERSION = (function()
  local f = assert(io.popen(H.bin .. " --version"))
  local v = f:read("a"):match("^moonwire (%S+)")
  f:close()
  return assert(v, "moonwire --version printed no version")
end)()

local function b64decode(s)
  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  local bits = s:gsub("=+$", ""):gsub(".", function(c)
    local v = alphabet:find(c, 1, true) - 1
    local r = ""
    for i = 5, 0, -1 do r = r .. ((v >> i) & 1) end
    return r
  end)
  local out = {}
  for i = 1, #bits - 7, 8 do out[#out + 1] = string.char(tonumber(bits:sub(i, i + 7), 2)) end
  return table.concat(out)
end

describe("ws opening handshake: the request (issue 3)", function()
  after_each(H.cleanup)

  it("sends GET path?query, Host with the port, Upgrade, Connection, a fresh key, version 13, Origin, the subprotocols, then the user's headers", function()
    local srv = W.peer()
    local res = H.run(W.script [[
      local first = open(arg[1] .. "/chat/room?x=1&y=%7Bz%7D", "A")
      first.websocketOrigin = "http://example.com"
      first.websocketClientProtocol = "chat, superchat"
      first.headers = { Cookie = "PHPSID=82u98; token=2hf9", ["X-Test"] = "value with spaces" }
      first.onWebSocketConnect = function(conn) conn:close() end
      first.onClose = function()
        print("A CLOSE")
        -- the second connection, made after the first is gone: no origin, no
        -- subprotocols, no headers, no path, and websocketCompression = false: no offer
        local second = open(arg[1], "B")
        second.websocketCompression = false
        second.onWebSocketConnect = function(conn) conn:close() end
        second:connect()
      end
      first:connect()
    ]], { srv.url })
    H.assert_exit(res, 0)
    assert.equal("", res.stderr)
    srv:wait_line("^REQUEST%-END 2$")
    local req1 = W.events(srv, 1, { "REQUEST", "HEADER", "REQUEST-END" })
    local key1 = req1[5] and req1[5]:match("^HEADER 1 Sec%-WebSocket%-Key: (.*)$")
    assert.is_string(key1, H.describe(res))
    assert.same({
      "REQUEST 1 GET /chat/room?x=1&y=%7Bz%7D HTTP/1.1",
      "HEADER 1 Host: 127.0.0.1:" .. srv.port,
      "HEADER 1 Upgrade: websocket",
      "HEADER 1 Connection: Upgrade",
      "HEADER 1 Sec-WebSocket-Key: " .. key1,
      "HEADER 1 Sec-WebSocket-Version: 13",
      "HEADER 1 Origin: http://example.com",
      "HEADER 1 Sec-WebSocket-Protocol: chat, superchat",
      -- permessage-deflate is offered by default (issue 13)
      "HEADER 1 Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
      "HEADER 1 User-Agent: moonwire/" .. VERSION,
      "HEADER 1 Cookie: PHPSID=82u98; token=2hf9",
      "HEADER 1 X-Test: value with spaces",
      "REQUEST-END 1",
    }, req1)
    local req2 = W.events(srv, 2, { "REQUEST", "HEADER", "REQUEST-END" })
    local key2 = req2[5] and req2[5]:match("^HEADER 2 Sec%-WebSocket%-Key: (.*)$")
    assert.is_string(key2)
    assert.same({
      "REQUEST 2 GET / HTTP/1.1",
      "HEADER 2 Host: 127.0.0.1:" .. srv.port,
      "HEADER 2 Upgrade: websocket",
      "HEADER 2 Connection: Upgrade",
      "HEADER 2 Sec-WebSocket-Key: " .. key2,
      "HEADER 2 Sec-WebSocket-Version: 13",
      "HEADER 2 User-Agent: moonwire/" .. VERSION,
      "REQUEST-END 2",
    }, req2)
    -- 16 random bytes, Base64: 24 characters, a fresh value each time
    for _, key in ipairs { key1, key2 } do
      assert.truthy(key:match("^[A-Za-z0-9+/]+==$"), key)
      assert.equal(24, #key)
      assert.equal(16, #b64decode(key))
    end
    assert.are_not.equal(key1, key2)
    assert.same({ "CONNECT", "WSCLOSE 1000 ", "CLOSE" }, W.client_events(res.lines, "A"))
    assert.same({ "CONNECT", "WSCLOSE 1000 ", "CLOSE" }, W.client_events(res.lines, "B"))
  end)

  -- Issue 11 item 16: a User-Agent unless the script sets its own, or false for none.
  for _, case in ipairs {
    { "sends User-Agent: moonwire/<version> by default", "", nil },
    { "sends the script's own User-Agent instead of the default", [[{ ["User-Agent"] = "mine/1.0" }]],
      "User-Agent: mine/1.0" },
    { "takes the script's user-agent in any case of the name", [[{ ["user-AGENT"] = "lower/2" }]],
      "user-AGENT: lower/2" },
    { "sends no User-Agent when the script sets it to false", [[{ ["User-Agent"] = false, ["X-Keep"] = "1" }]],
      false },
  } do
    it(case[1] .. " (issue 11 item 16)", function()
      local srv = W.peer()
      local set = case[2] ~= "" and ("c.headers = " .. case[2] .. "\n") or ""
      local res = H.run(W.script([[
local c = open()
]] .. set .. [[
c.onWebSocketConnect = function(conn) conn:close(1000) end
c:connect()
]]), { srv.url })
      H.assert_exit(res, 0)
      assert.equal("", res.stderr)
      srv:wait_line("^REQUEST%-END 1$")
      local agents = {}
      for _, l in ipairs(W.events(srv, 1, { "HEADER" })) do
        local h = l:match("^HEADER 1 (.*)$")
        if h:lower():find("^user%-agent:") then agents[#agents + 1] = h end
      end
      local want = case[3]
      if want == nil then want = "User-Agent: moonwire/" .. VERSION end
      assert.same(want and { want } or {}, agents)
      if case[3] == false then assert.same({ "HEADER 1 X-Keep: 1" }, H.grep(srv.lines, "^HEADER 1 X%-Keep")) end
      assert.same({ "CONNECT", "WSCLOSE 1000 ", "CLOSE" }, W.client_events(res.lines))
    end)
  end

  it("writes Host as [::1]:port for an IPv6 literal", function()
    local probe = io.open("/proc/net/if_inet6")
    local has_v6 = probe and probe:read("a"):find("00000000000000000000000000000001") ~= nil
    if probe then probe:close() end
    if not has_v6 then pending("no IPv6 loopback here") return end
    local srv = W.peer({}, "::1")
    local res = H.run(OPEN_AND_CLOSE, { srv.url .. "/v6" })
    H.assert_exit(res, 0)
    assert.same({ "CONNECT", "WSCONNECT", "WSCLOSE 1000 ", "CLOSE" }, W.client_events(res.lines))
    srv:wait_line("^REQUEST%-END 1$")
    assert.same({ "REQUEST 1 GET /v6 HTTP/1.1", "HEADER 1 Host: [::1]:" .. srv.port },
      { W.events(srv, 1, { "REQUEST" })[1], W.events(srv, 1, { "HEADER" })[1] })
  end)

  it("writes Host without the port when the URL's port is the default (ws:// on 80), given or not", function()
    -- Port 80 in a network namespace of the test's own (root: CI runs as root), so it
    -- collides with nothing on the machine; moonwire joins it with nsenter.
    local id = io.popen("id -u")
    local root = id:read("l") == "0"
    id:close()
    if not root then pending("needs root for a network namespace") return end
    local srv = W.peer({ "--port", "80" }, nil, { netns = true })
    assert.equal(80, srv.port)
    for i, url in ipairs { "ws://127.0.0.1/default", "ws://127.0.0.1:80/given" } do
      local res = H.run(OPEN_AND_CLOSE, { url }, { prefix = srv.netns })
      H.assert_exit(res, 0)
      assert.same({ "CONNECT", "WSCONNECT", "WSCLOSE 1000 ", "CLOSE" }, W.client_events(res.lines))
      srv:wait_line("^REQUEST%-END " .. i .. "$")
      assert.same({ "REQUEST " .. i .. " GET /" .. url:match("/(%a+)$") .. " HTTP/1.1",
                    "HEADER " .. i .. " Host: 127.0.0.1" },
        { W.events(srv, i, { "REQUEST" })[1], W.events(srv, i, { "HEADER" })[1] })
    end
  end)

  -- Each case: what the script sets, and the start of the error message after the URL.
  local BAD = {
    { "a CR LF in a header value", [[c.headers = { ["X-Evil"] = "a\r\nInjected: 1" }]],
      'header "X-Evil" has a CR, LF or NUL in its value' },
    { "a NUL in a header value", [[c.headers = { ["X-Nul"] = "a\0b" }]],
      'header "X-Nul" has a CR, LF or NUL in its value' },
    { "a LF in a header name", [[c.headers = { ["X-Bad\nName"] = "v" }]],
      'header "X-Bad\\x0aName" is not a valid header name' },
    { "a CR in websocketOrigin", [[c.websocketOrigin = "http://a.example\rX: y"]],
      "websocketOrigin has a CR, LF or NUL" },
    { "a Host set to false (a header that is false is left out)", [[c.headers = { Host = false }]],
      'header "Host" cannot be left out: the handshake needs a Host' },
  }
  for _, case in ipairs(BAD) do
    it("refuses " .. case[1] .. " with onError before sending anything, then onClose", function()
      local srv = W.peer()
      local res = H.run(W.script("local c = open()\n" .. case[2] .. "\nc:connect()\n"), { srv.url })
      H.assert_exit(res, 0)
      assert.equal("", res.stderr)
      local url = srv.url
      local ev = W.client_events(res.lines)
      assert.equal("CLOSE", ev[#ev], H.describe(res))
      -- the error comes before onClose; refused before connecting: no onConnect, no TCP
      -- connection (spec/connect_spec.lua proves the latter against a control connection)
      assert.same({ "ERROR 5 websocket handshake with " .. url .. " refused: "
        .. case[3] .. "; nothing was sent", "CLOSE" }, ev)
      assert.same({}, srv:grep("^CONNECT"))
      assert.same({}, srv:grep("^REQUEST"))
    end)
  end
end)

-- Handshake failures: each prints exactly CONNECT, ERROR 5 <message>, CLOSE.
local REFUSED = {
  { "a 403", { "--status", "403 Forbidden", "--body", "no\\x81\\x05hello" },
    "HTTP/1.1 403 Forbidden" },
  { "a 200 whose body looks like a frame", { "--status", "200 OK", "--body", "\\x81\\x05hello" },
    "HTTP/1.1 200 OK" },
  { "a 101 without Upgrade", { "--omit", "Upgrade" }, "missing Upgrade: websocket" },
  { "a 101 with Upgrade: h2c", { "--omit", "Upgrade", "--header", "Upgrade: h2c" },
    'Upgrade is "h2c", not websocket' },
  { "a 101 without Connection", { "--omit", "Connection" },
    'Connection header lacks "upgrade"' },
  { "a 101 with Connection: keep-alive", { "--omit", "Connection", "--header", "Connection: keep-alive" },
    'Connection header lacks "upgrade"' },
  { "a wrong Sec-WebSocket-Accept", { "--accept", "wrong" }, "invalid Sec-WebSocket-Accept" },
  { "a missing Sec-WebSocket-Accept", { "--accept", "missing" }, "missing Sec-WebSocket-Accept" },
  { "an extension that was not offered", { "--header", "Sec-WebSocket-Extensions: permessage-deflate" },
    'server chose extension "permessage-deflate" that was not offered', "c.websocketCompression = false" },
  { "a subprotocol when none was offered", { "--protocol", "chat" },
    'server chose subprotocol "chat" that was not offered' },
  { "a subprotocol that was not offered", { "--protocol", "superchat" },
    'server chose subprotocol "superchat" that was not offered', [[c.websocketClientProtocol = "chat, super"]] },
  { "a response head over 16 KiB", { "--pad-head", "17000" }, "response head exceeds 16384 bytes" },
}

describe("ws opening handshake: the response (issue 3)", function()
  after_each(H.cleanup)

  for _, case in ipairs(REFUSED) do
    it("fails on " .. case[1] .. ": onError HANDSHAKE_FAIL naming it, no message, onClose once", function()
      local srv = W.peer(case[2])
      local res = H.run(W.script("local c = open()\n" .. (case[4] or "") .. [[

        c.onMessage = function(_, d) print("MSG " .. esc(d)) end
        assert(mw.errors.HANDSHAKE_FAIL == 5)
        c:connect()
      ]]), { srv.url })
      H.assert_exit(res, 0)
      assert.equal("", res.stderr)
      assert.same({ "CONNECT", "ERROR 5 websocket handshake with " .. srv.url .. " failed: " .. case[3],
        "CLOSE" }, W.client_events(res.lines), H.describe(res))
      srv:wait_line("^RESPONDED 1 ")
    end)
  end

  it("accepts Upgrade and Connection case-insensitively, Connection as a list, a head just under 16 KiB", function()
    local srv = W.peer { "--omit", "Upgrade", "--omit", "Connection", "--header", "Upgrade: WebSocket",
      "--header", "Connection: keep-alive, UPGRADE", "--pad-head", "15500" }
    local res = H.run(OPEN_AND_CLOSE, { srv.url })
    H.assert_exit(res, 0)
    assert.same({ "CONNECT", "WSCONNECT", "WSCLOSE 1000 ", "CLOSE" }, W.client_events(res.lines))
    local _, head = srv:wait_line("^RESPONDED 1 (.*)$")
    assert.is_true(#head > 15500 and #head < 16384, tostring(#head))
  end)

  it("bounds a silent server with handshakeTimeout: onError TIMEOUT within the bound, then onClose", function()
    local srv = W.peer { "--silent" }
    local res = H.run(W.script [[
      local c = open()
      c.handshakeTimeout = 0.5
      local t0
      c.onConnect = function() t0 = mw.now(); print("CONNECT") end
      c.onError = function(_, code, m)
        print("ERROR " .. code .. " " .. m)
        print(("ELAPSED %.3f"):format(mw.now() - t0))
      end
      c:connect()
    ]], { srv.url })
    H.assert_exit(res, 0)
    assert.same({ "CONNECT", "ERROR 8 websocket handshake with " .. srv.url .. ": timed out after 0.5s",
      "CLOSE" }, W.client_events(res.lines), H.describe(res))
    local elapsed = tonumber(H.grep(res.lines, "^ELAPSED")[1]:match("[%d.]+"))
    assert.is_true(elapsed >= 0.49 and elapsed < 0.5 + 0.5 * H.slow, "elapsed " .. elapsed)
    srv:wait_line("^REQUEST%-END 1$")
    srv:wait_line("^EOF 1 %d+$")
  end)

  it("delivers frames that arrive in the same write as the 101, and hands onWebSocketConnect the raw head", function()
    -- 101 + a text frame + a binary frame + a close frame, one send() on the server
    local srv = W.peer { "--body", "\\x81\\x05hello\\x82\\x03\\x00\\x01\\xff\\x88\\x05\\x03\\xe8bye" }
    local res = H.run(W.script [[
      local c = open()
      c.onWebSocketConnect = function(_, response) print("WSCONNECT"); print("HEAD " .. esc(response)) end
      c:connect()
    ]], { srv.url })
    H.assert_exit(res, 0)
    assert.equal("", res.stderr)
    assert.same({ "CONNECT", "WSCONNECT", "MSG text hello", "MSG binary \\x00\\x01\\xff",
      "WSCLOSE 1000 bye", "CLOSE" }, W.client_events(res.lines), H.describe(res))
    local _, head = srv:wait_line("^RESPONDED 1 (.*)$")
    assert.equal("HEAD " .. head, H.grep(res.lines, "^HEAD ")[1])
    assert.truthy(head:match("^HTTP/1%.1 101 Switching Protocols\\x0d\\x0a.*\\x0d\\x0a\\x0d\\x0a$"), head)
    -- the client answered the close with the same code
    srv:wait_line("^WSCLOSE 1 1000 $")
  end)

  it("makes the chosen subprotocol readable as conn.websocketClientProtocol after the handshake", function()
    local script = W.script [[
      local c = open()
      c.websocketClientProtocol = "chat, superchat"
      print("BEFORE " .. tostring(c.websocketClientProtocol))
      c.onWebSocketConnect = function(conn)
        print("AFTER " .. tostring(conn.websocketClientProtocol))
        conn:close()
      end
      c:connect()
    ]]
    local srv = W.peer { "--protocol", "superchat" }
    local res = H.run(script, { srv.url })
    H.assert_exit(res, 0)
    assert.same({ "BEFORE chat, superchat", "AFTER superchat" }, H.grep(res.lines, "^[BA][EF][FT]"))
    -- a server that picks none: no subprotocol is in use
    local none = W.peer()
    res = H.run(script, { none.url })
    H.assert_exit(res, 0)
    assert.same({ "BEFORE chat, superchat", "AFTER " }, H.grep(res.lines, "^[BA][EF][FT]"))
  end)
end)

describe("ws sends before the handshake completes (issue 3)", function()
  after_each(H.cleanup)

  it("queues sends made before connect(), in onConnect and while waiting for the 101, and sends them right after it, in order", function()
    local srv = W.peer { "--hold" }
    local p = H.start(W.script [[
      local c = open()
      print("SEND one " .. tostring(c:send("one")))
      c.onConnect = function(conn)
        print("CONNECT")
        print("SEND two " .. tostring(conn:send("two")))
        mw.Timer.add(0.05, function() print("SEND three " .. tostring(conn:send("three"))) end, nil, false)
      end
      c.onWebSocketConnect = function(conn)
        print("WSCONNECT")
        print("SEND four " .. tostring(conn:send("four")))
        conn:close()
      end
      c:connect()
    ]], { srv.url })
    -- the 101 goes out only once the client has queued all three
    srv:wait_line("^REQUEST%-END 1$")
    p:wait_line("^SEND three true$")
    assert.same({}, srv:grep("^FRAME"))
    W.command(srv, "DO 1 respond")
    local code = p:wait(20)
    assert.equal(0, code, p:describe())
    assert.equal("", p:stderr_text())
    assert.same({ "SEND one true", "CONNECT", "SEND two true", "SEND three true", "WSCONNECT",
      "SEND four true", "WSCLOSE 1000 ", "CLOSE" },
      H.grep(p.lines, "^[A-Z]"))
    srv:wait_line("^GONE 1$")
    assert.same({ "text one", "text two", "text three", "text four", "close \\x03\\xe8" },
      W.frame_list(srv, 1))
    -- nothing arrived before the response went out
    local responded, first_frame
    for i, l in ipairs(srv.lines) do
      if l:find("^RESPONDED 1 ") then responded = responded or i end
      if l:find("^FRAME 1 ") then first_frame = first_frame or i end
    end
    assert.is_true(responded < first_frame)
  end)

  it("judges an early send at once (UTF-8, its kind), keeps early raw bytes in order, and applies options set after it", function()
    local srv = W.peer { "--then", "text:0123456789", "--then", "text:0123456789X" }
    local res = H.run(W.script [[
      local c = open()
      print("S1 " .. tostring(c:send("\xff")))            -- BLOB: text, not UTF-8
      print("S2 " .. tostring(c:send("as-text")))         -- text: typed when queued
      print("S3 " .. tostring(c:send("\x82\x80\0\0\0\0", true)))  -- raw: an empty binary frame
      c.websocketType = Ws.BINARY_TYPE_ARRAYBUFFER
      print("S4 " .. tostring(c:send("\xff")))            -- binary now
      c.maxPackageSize = 10                                -- set after st exists
      c:connect()
    ]], { srv.url })
    H.assert_exit(res, 0)
    assert.equal("", res.stderr)
    assert.same({ "S1 false", "S2 true", "S3 true", "S4 true",
      "ERROR 2 send " .. srv.url .. ": text message is not valid UTF-8, nothing sent",
      "CONNECT", "WSCONNECT", "MSG text 0123456789",
      "ERROR 7 websocket " .. srv.url .. ": message exceeds maxPackageSize (10 bytes)", "CLOSE" }, res.lines)
    srv:wait_line("^WSCLOSE 1 1009 $")
    assert.same({ "text as-text", "binary ", "binary \\xff", "close \\x03\\xf1" }, W.frame_list(srv, 1))
    assert.equal("00000000", W.frames(srv, 1)[2].mask)
  end)
end)
