-- Issue 3, the ws:// client's Lua API against a real server: message kinds and
-- websocketType, raw sends, UTF-8 checks on sends, masking, pings and pongs (automatic,
-- suppressed, interval, timeout), the closing handshake both ways, maxPackageSize, one
-- write per callback, and the examples. The server is spec/servers/ws_raw_peer.py (or
-- ws_py_peer.py, Python's `websockets`, for the examples), on loopback ephemeral ports.
local H = require "spec.support.helper"
local W = require "spec.support.ws_raw"

local function number_line(lines, prefix)
  for _, l in ipairs(lines) do
    local v = l:match("^" .. prefix .. " ([%d.]+)$")
    if v then return tonumber(v) end
  end
  error("no line " .. prefix .. " in:\n" .. table.concat(lines, "\n"), 2)
end

describe("ws messages (issue 3)", function()
  after_each(H.cleanup)

  it("sends text frames for BINARY_TYPE_BLOB, binary for ARRAYBUFFER, sendText/sendBinary override, raw bytes as given; onMessage gets the kind", function()
    local srv = W.peer { "--then", "text:t\\xc3\\xa9xt", "--then", "binary:\\x00bin\\xff" }
    local res = H.run(W.script [[
      local c = open()
      print("DEFAULT " .. tostring(c.websocketType == Ws.BINARY_TYPE_BLOB))
      local got = 0
      c.onMessage = function(conn, data, kind)
        print("MSG " .. kind .. " " .. esc(data))
        got = got + 1
        if got < 2 then return end
        print("S1 " .. tostring(conn:send("blob")))                -- text
        print("S2 " .. tostring(conn:sendBinary("bin-on-blob")))   -- binary
        conn.websocketType = Ws.BINARY_TYPE_ARRAYBUFFER
        print("TYPE " .. tostring(conn.websocketType == Ws.BINARY_TYPE_ARRAYBUFFER))
        print("S3 " .. tostring(conn:send("\0arraybuffer\255")))   -- binary
        print("S4 " .. tostring(conn:sendText("text-on-ab")))      -- text
        -- a masked text frame made by hand: key 01 02 03 04, payload "raw!"
        local key, payload = { 1, 2, 3, 4 }, "raw!"
        local masked = payload:gsub("()(.)", function(i, ch)
          return string.char(ch:byte() ~ key[(i - 1) % 4 + 1])
        end)
        print("S5 " .. tostring(conn:send("\x81" .. string.char(0x80 | #payload) .. "\1\2\3\4" .. masked, true)))
        conn:close()
      end
      c:connect()
    ]], { srv.url })
    H.assert_exit(res, 0)
    assert.equal("", res.stderr)
    assert.same({ "DEFAULT true", "CONNECT", "WSCONNECT", "MSG text t\\xc3\\xa9xt", "MSG binary \\x00bin\\xff",
      "S1 true", "S2 true", "TYPE true", "S3 true", "S4 true", "S5 true", "WSCLOSE 1000 ", "CLOSE" },
      res.lines)
    srv:wait_line("^GONE 1$")
    assert.same({ "text blob", "binary bin-on-blob", "binary \\x00arraybuffer\\xff", "text text-on-ab",
      "text raw!", "close \\x03\\xe8" }, W.frame_list(srv, 1))
    assert.equal("01020304", W.frames(srv, 1)[5].mask)
    assert.same({}, srv:grep("^BAD"))
  end)

  it("refuses a text send that is not UTF-8: send returns false, onError says why, nothing is sent", function()
    local srv = W.peer()
    local res = H.run(W.script [[
      local c = open()
      c.onWebSocketConnect = function(conn)
        print("WSCONNECT")
        print("BAD1 " .. tostring(conn:send("\xff")))            -- BLOB: a text frame
        print("BAD2 " .. tostring(conn:sendText("ok\xc3")))      -- truncated sequence
        print("BIN " .. tostring(conn:sendBinary("\xff")))       -- binary: any bytes
        print("GOOD " .. tostring(conn:send("after \u{20ac}")))
        conn:close()
      end
      c:connect()
    ]], { srv.url })
    H.assert_exit(res, 0)
    assert.equal("", res.stderr)
    local err = "ERROR 2 send " .. srv.url .. ": text message is not valid UTF-8, nothing sent"
    assert.same({ "CONNECT", "WSCONNECT", "BAD1 false", "BAD2 false", "BIN true", "GOOD true",
      err, err, "WSCLOSE 1000 ", "CLOSE" }, res.lines)
    srv:wait_line("^GONE 1$")
    assert.same({ "binary \\xff", "text after \\xe2\\x82\\xac", "close \\x03\\xe8" }, W.frame_list(srv, 1))
  end)

  it("masks every frame it sends with a fresh key", function()
    local srv = W.peer()
    local res = H.run(W.script [[
      local c = open()
      c.onWebSocketConnect = function(conn)
        for i = 1, 50 do conn:send("same") end
        conn:sendBinary("same")
        conn:close(1000, "same")
      end
      c:connect()
    ]], { srv.url })
    H.assert_exit(res, 0)
    srv:wait_line("^GONE 1$")
    local frames = W.frames(srv, 1)
    assert.equal(52, #frames)
    local keys = {}
    for i, f in ipairs(frames) do
      assert.truthy(f.mask:match("^%x%x%x%x%x%x%x%x$"), "frame " .. i .. " unmasked")
      assert.is_nil(keys[f.mask], "mask key reused: " .. f.mask)
      keys[f.mask] = true
      assert.equal(i <= 50 and "same" or (i == 51 and "same" or "\\x03\\xe8same"), f.payload)
    end
    assert.same({}, srv:grep("^BAD"))
  end)

  it("sends all frames queued inside one callback in one write", function()
    local srv = W.peer { "--then", "text:go" }
    local path = H.write_script(W.script [[
      local c = open()
      c.onMessage = function(conn)
        for i = 1, 10 do conn:send("m" .. i) end
        conn:close()
      end
      c:connect()
    ]])
    local log = H.tmpdir() .. "/strace.log"
    local p = H.spawn({ "/usr/bin/strace", "-f", "-qq", "-xx", "-s", "4", "-e", "trace=sendto,write,writev,sendmsg",
      "-e", "signal=none", "-o", log, H.bin, path, srv.url },
      -- LeakSanitizer cannot run under ptrace; the other specs check leaks
      { name = "strace moonwire", env = { ASAN_OPTIONS = "detect_leaks=0" } })
    p:close_stdin()
    assert.equal(0, p:wait(30), p:describe())
    srv:wait_line("^GONE 1$")
    local want = { "close \\x03\\xe8" }
    for i = 10, 1, -1 do table.insert(want, 1, "text m" .. i) end
    assert.same(want, W.frame_list(srv, 1))
    -- the syscalls that wrote to the socket: the request, then ten frames and the close
    -- frame together (10 x (6 + payload) + 6 + 2 bytes)
    local calls = {}
    for line in io.lines(log) do
      local first, n = line:match('sendto%(%d+, "(\\x%x%x)[^"]*"%.*, %d+, [^)]*%) = (%d+)')
      if first then calls[#calls + 1] = first .. " " .. n end
      assert.is_nil(line:match("writev%(") or line:match("sendmsg%("), line)
    end
    assert.equal(2, #calls, table.concat(calls, "\n"))
    assert.truthy(calls[1]:match("^\\x47 %d+$"), calls[1])          -- "G" of GET
    assert.equal("\\x81 " .. (10 * 6 + 9 * 2 + 3 + 8), calls[2])
  end)
end)

describe("ws pings and pongs (issue 3)", function()
  after_each(H.cleanup)

  it("answers a ping with a pong of the same payload, calls onWebSocketPing, and a false result suppresses the pong", function()
    local srv = W.peer { "--then", "ping:first", "--then", "ping:\\x00second\\xff", "--then", "pong:unsolicited",
      "--then", "text:done" }
    local res = H.run(W.script [[
      local c = open()
      c.onWebSocketPing = function(conn, payload)
        print("PING " .. esc(payload))
        if payload == "first" then return false end
      end
      c.onMessage = function(conn, data) print("MSG " .. data); conn:close() end
      c:connect()
    ]], { srv.url })
    H.assert_exit(res, 0)
    assert.equal("", res.stderr)
    assert.same({ "CONNECT", "WSCONNECT", "PING first", "PING \\x00second\\xff", "PONG unsolicited",
      "MSG done", "WSCLOSE 1000 ", "CLOSE" }, res.lines)
    srv:wait_line("^GONE 1$")
    assert.same({ "pong \\x00second\\xff", "close \\x03\\xe8" }, W.frame_list(srv, 1))
  end)

  it("pongs automatically without onWebSocketPing", function()
    local srv = W.peer { "--then", "ping:", "--then", "ping:" .. ("p"):rep(125), "--then", "text:done" }
    local res = H.run(W.script [[
      local c = open()
      c.onMessage = function(conn) conn:close() end
      c:connect()
    ]], { srv.url })
    H.assert_exit(res, 0)
    srv:wait_line("^GONE 1$")
    assert.same({ "pong ", "pong " .. ("p"):rep(125), "close \\x03\\xe8" }, W.frame_list(srv, 1))
  end)

  it("sends a ping every websocketPingInterval", function()
    local srv = W.peer()
    local res = H.run(W.script [[
      local c = open()
      c.websocketPingInterval = 0.2
      c.websocketPingTimeout = 0.15   -- answered in time: never fires
      local t0, n = nil, 0
      c.onWebSocketConnect = function() t0 = mw.now(); print("WSCONNECT") end
      c.onWebSocketPong = function(conn, p)
        n = n + 1
        print(("PONG %d %.3f"):format(n, mw.now() - t0))
        if n == 3 then conn:close() end
      end
      c:connect()
    ]], { srv.url })
    H.assert_exit(res, 0)
    assert.equal("", res.stderr)
    local ev = {}
    for _, l in ipairs(W.client_events(res.lines)) do ev[#ev + 1] = l:gsub("^(PONG %d) .*", "%1") end
    assert.same({ "CONNECT", "WSCONNECT", "PONG 1", "PONG 2", "PONG 3", "WSCLOSE 1000 ", "CLOSE" }, ev)
    for i = 1, 3 do
      local t = number_line(res.lines, "PONG " .. i)
      assert.is_true(t >= 0.2 * i - 0.01 and t < 0.2 * i + 0.15 * H.slow, ("pong %d at %.3f s"):format(i, t))
    end
    srv:wait_line("^GONE 1$")
    assert.same({ "ping ", "ping ", "ping ", "close \\x03\\xe8" }, W.frame_list(srv, 1))
  end)

  it("fails the connection with TIMEOUT when nothing comes within websocketPingTimeout after a ping", function()
    local srv = W.peer { "--pong", "never" }
    local res = H.run(W.script [[
      local c = open()
      c.websocketPingInterval = 0.3
      c.websocketPingTimeout = 0.15
      local t0
      c.onWebSocketConnect = function() t0 = mw.now(); print("WSCONNECT") end
      c.onError = function(_, code, m)
        print("ERROR " .. code .. " " .. m)
        print(("AT %.3f"):format(mw.now() - t0))
      end
      c:connect()
    ]], { srv.url })
    H.assert_exit(res, 0)
    assert.equal("", res.stderr)
    assert.same({ "CONNECT", "WSCONNECT", "ERROR 8 websocket " .. srv.url .. ": no pong or data within 0.15s after a ping",
      "CLOSE" }, W.client_events(res.lines))
    local t = number_line(res.lines, "AT")
    assert.is_true(t >= 0.44 and t < 0.45 + 0.15 * H.slow, ("failed at %.3f s"):format(t))
    srv:wait_line("^EOF 1 %d+$")
    assert.same({ "ping " }, W.frame_list(srv, 1))
  end)
end)

describe("ws closing handshake (issue 3)", function()
  after_each(H.cleanup)

  it("close(code, reason) sends that close frame, gets the server's reply in onWebSocketClose, sends nothing after it", function()
    local srv = W.peer { "--close-code", "1001:server\\x20leaving" }
    local res = H.run(W.script [[
      local c = open()
      local t0
      c.onWebSocketConnect = function(conn)
        print("WSCONNECT")
        t0 = mw.now()
        print("CLOSE-CALL " .. tostring(conn:close(4000, "bye \u{e9}")))
        print("STATUS " .. conn:getStatus())
        print("SEND " .. tostring(conn:send("late")))
        print("SENDBIN " .. tostring(conn:sendBinary("late")))
        print("CLOSE-AGAIN " .. tostring(conn:close(1000)))
      end
      c.onClose = function() print("CLOSE"); print(("AFTER %.3f"):format(mw.now() - t0)) end
      c:connect()
    ]], { srv.url })
    H.assert_exit(res, 0)
    assert.equal("", res.stderr)
    assert.same({ "CONNECT", "WSCONNECT", "CLOSE-CALL true", "STATUS CLOSING", "SEND false", "SENDBIN false",
      "CLOSE-AGAIN false", "WSCLOSE 1001 server leaving", "CLOSE", "AFTER" },
      (res.stdout:gsub("AFTER [%d.]+", "AFTER"):gmatch("[^\n]+")) and
      (function() local r = {} for l in res.stdout:gsub("AFTER [%d.]+", "AFTER"):gmatch("[^\n]+") do r[#r + 1] = l end return r end)())
    assert.is_true(number_line(res.lines, "AFTER") < 1 * H.slow)   -- the server closed TCP at once
    srv:wait_line("^GONE 1$")
    assert.same({ "close \\x0f\\xa0bye \\xc3\\xa9" }, W.frame_list(srv, 1))
    assert.same({ "WSCLOSE 1 4000 bye \\xc3\\xa9" }, srv:grep("^WSCLOSE"))
    assert.same({}, srv:grep("^BAD"))
  end)

  it("waits for a slow close reply", function()
    local srv = W.peer { "--close-reply", "0.4" }
    local res = H.run(W.script [[
      local c = open()
      local t0
      c.onWebSocketConnect = function(conn) print("WSCONNECT"); t0 = mw.now(); conn:close(1000, "slow") end
      c.onClose = function() print("CLOSE"); print(("AFTER %.3f"):format(mw.now() - t0)) end
      c:connect()
    ]], { srv.url })
    H.assert_exit(res, 0)
    assert.same({ "CONNECT", "WSCONNECT", "WSCLOSE 1000 ", "CLOSE" }, W.client_events(res.lines))
    local t = number_line(res.lines, "AFTER")
    assert.is_true(t >= 0.39 and t < 0.4 + 0.5 * H.slow, "closed after " .. t)
  end)

  it("bounds the wait for a server that never answers the close by closeTimeout: onError TIMEOUT naming it, then onClose; the client closes TCP", function()
    local srv = W.peer { "--close-reply", "never", "--keep-tcp" }
    local res = H.run(W.script [[
      local c = open(arg[1] .. "/")
      print("DEFAULT " .. c.closeTimeout)
      c.closeTimeout = 0.3
      print("SET " .. c.closeTimeout)
      local t0
      c.onWebSocketConnect = function(conn) print("WSCONNECT"); t0 = mw.now(); conn:close(1000, "bye") end
      c.onError = function(conn, code, m)
        print("ERROR " .. code .. " " .. m)
        print("TIMEOUT? " .. tostring(code == mw.errors.TIMEOUT) .. " " .. conn:getStatus())
      end
      c.onClose = function() print("CLOSE"); print(("AFTER %.3f"):format(mw.now() - t0)) end
      c:connect()
    ]], { srv.url }, { timeout = 4 })   -- not the 5 s default: the run is bounded below it
    H.assert_exit(res, 0)
    assert.equal("", res.stderr)
    assert.same({ "DEFAULT 5.0", "SET 0.3" }, { res.lines[1], res.lines[2] })
    assert.same({ "CONNECT", "WSCONNECT", "ERROR 8 close " .. srv.url
      .. "/: no close frame from the server within 0.3s", "CLOSE" }, W.client_events(res.lines))
    assert.same({ "TIMEOUT? true CLOSED" }, H.grep(res.lines, "^TIMEOUT%?"))
    local t = number_line(res.lines, "AFTER")
    assert.is_true(t >= 0.29 and t < 0.3 + 0.5 * H.slow, "closed after " .. t)
    srv:wait_line("^EOF 1 %d+$")
    assert.same({ "close \\x03\\xe8bye" }, W.frame_list(srv, 1))
  end)

  it("a slow close reply within closeTimeout is no error", function()
    local srv = W.peer { "--close-reply", "0.2" }
    local res = H.run(W.script [[
      local c = open()
      c.closeTimeout = 2
      c.onWebSocketConnect = function(conn) print("WSCONNECT"); conn:close(1000, "slow") end
      c:connect()
    ]], { srv.url })
    H.assert_exit(res, 0)
    assert.equal("", res.stderr)
    assert.same({ "CONNECT", "WSCONNECT", "WSCLOSE 1000 ", "CLOSE" }, W.client_events(res.lines))
  end)

  it("after the close handshake, closes TCP itself when the server does not", function()
    local srv = W.peer { "--keep-tcp" }
    local res = H.run(W.script [[
      local c = open()
      local t0
      c.onWebSocketConnect = function(conn) print("WSCONNECT"); t0 = mw.now(); conn:close() end
      c.onClose = function() print("CLOSE"); print(("AFTER %.3f"):format(mw.now() - t0)) end
      c:connect()
    ]], { srv.url })
    H.assert_exit(res, 0)
    assert.same({ "CONNECT", "WSCONNECT", "WSCLOSE 1000 ", "CLOSE" }, W.client_events(res.lines))
    assert.is_true(number_line(res.lines, "AFTER") < 5 + 1 * H.slow)
    srv:wait_line("^EOF 1 %d+$")
  end)

  it("answers a received close with the same code: onWebSocketClose, then onClose, once each", function()
    local srv = W.peer { "--then", "close:4001:server-bye" }
    local res = H.run(W.script [[
      local c = open()
      c.onWebSocketClose = function(conn, code, reason)
        print("WSCLOSE " .. code .. " " .. esc(reason))
        print("SEND " .. tostring(conn:send("late")))
      end
      c:connect()
    ]], { srv.url })
    H.assert_exit(res, 0)
    assert.equal("", res.stderr)
    assert.same({ "CONNECT", "WSCONNECT", "WSCLOSE 4001 server-bye", "SEND false", "CLOSE" }, res.lines)
    srv:wait_line("^GONE 1$")
    assert.same({ "close \\x0f\\xa1" }, W.frame_list(srv, 1))
  end)

  it("closes with 1009 and onError PACKAGE_TOO_LARGE when a message exceeds maxPackageSize", function()
    local srv = W.peer { "--then", "text:0123456789", "--then", "binary:0123456789X" }
    local res = H.run(W.script [[
      local c = open()
      c.maxPackageSize = 10
      assert(mw.errors.PACKAGE_TOO_LARGE == 7)
      c:connect()
    ]], { srv.url })
    H.assert_exit(res, 0)
    assert.equal("", res.stderr)
    assert.same({ "CONNECT", "WSCONNECT", "MSG text 0123456789",
      "ERROR 7 websocket " .. srv.url .. ": message exceeds maxPackageSize (10 bytes)", "CLOSE" }, res.lines)
    srv:wait_line("^WSCLOSE 1 1009 $")
    assert.same({ "close \\x03\\xf1" }, W.frame_list(srv, 1))
  end)
end)

describe("ws examples (issue 3)", function()
  after_each(H.cleanup)

  local function py_peer()
    local p = H.spawn({ H.python, "-u", H.src .. "/spec/servers/ws_py_peer.py" }, { name = "ws_py_peer.py" })
    local _, port = p:wait_line("^PORT (%d+)$", 10)
    p.port = tonumber(port)
    return p
  end

  it("examples/ws_echo.lua sends three messages, prints the echoes, closes with 1000 and exits 0", function()
    local srv = py_peer()
    local url = "ws://127.0.0.1:" .. srv.port .. "/echo"
    local res = H.run(nil, { url }, { path = H.src .. "/examples/ws_echo.lua" })
    H.assert_exit(res, 0)
    assert.equal("", res.stderr)
    assert.same({ "connected to " .. url, "echo 1 (text): hello", "echo 2 (text): from",
      "echo 3 (text): moonwire", "closed" }, res.lines)
    srv:wait_line("^CONNECT /echo ")
    assert.truthy((srv:wait_line("^MSG ")):match("^MSG text 5 "))
    assert.truthy((srv:wait_line("^MSG ")):match("^MSG text 4 "))
    assert.truthy((srv:wait_line("^MSG ")):match("^MSG text 8 "))
    srv:wait_line("^CLOSE 1000 done$")
  end)

  it("examples/seed.lua talks to the websockets server, and SIGINT closes it with 1001 and exits 0", function()
    local srv = py_peer()
    local p = H.start(nil, { "ws://127.0.0.1:" .. srv.port }, { path = H.src .. "/examples/seed.lua" })
    p:wait_line("^tcp connected$")
    p:wait_line("^HTTP/1%.1 101 Switching Protocols")
    p:wait_line("^recv: hello$")
    local _, hdrs = srv:wait_line("^CONNECT / (.*)$")
    assert.truthy(hdrs:find("Cookie=PHPSID=82u98fjhakfusuanfnahfi; token=2hf9a929jhfihaf9i", 1, true), hdrs)
    assert.truthy((srv:wait_line("^MSG ")):match("^MSG text 5 "))
    p:kill("sigint")
    local code, signal = p:wait(10)
    assert.equal(0, code, p:describe())
    assert.equal(0, signal)
    srv:wait_line("^CLOSE 1001 going away$")
    assert.equal("", p:stderr_text())
    assert.same({}, H.grep(p.lines, "^error"))
  end)

  it("examples/seed.lua reconnects a second after the server drops the connection", function()
    local srv = W.peer { "--echo" }
    local p = H.start(nil, { srv.url }, { path = H.src .. "/examples/seed.lua" })
    p:wait_line("^recv: hello$")
    srv:wait_line("^MESSAGE 1 text 5 hello$")
    W.command(srv, "DO 1 drop")
    local _, gone = srv:wait_line("^GONE 1$"), H.now()
    p:wait_line("^error: websocket " .. srv.url:gsub("%p", "%%%0")
      .. ": connection closed by the server without a close frame %(1006%)$")
    p:wait_line("^connection closed and try to reconnect$")
    srv:wait_line("^CONNECT 2$")
    local delay = H.now() - gone
    assert.is_true(delay >= 0.9 and delay < 1 + 1 * H.slow, "reconnected after " .. delay)
    p:wait_line("^tcp connected$")
    p:wait_line("^recv: hello$")
    srv:wait_line("^MESSAGE 2 text 5 hello$")
    -- the headers go out again on the new connection
    assert.same({ "HEADER 2 Cookie: PHPSID=82u98fjhakfusuanfnahfi; token=2hf9a929jhfihaf9i",
      "HEADER 2 OtherKey: values" }, srv:grep("^HEADER 2 [CO][ot][oh][ke][ir]"))
    p:kill("sigint")
    assert.equal(0, p:wait(10), p:describe())
    srv:wait_line("^WSCLOSE 2 1001 going away$")
    assert.equal("", p:stderr_text())
  end)
end)
