-- Issue 6, "Security": header injection is refused before a byte is sent; the
-- Sec-WebSocket-Key and every mask key come from wolfCrypt's RNG; Cookie and
-- Authorization values never appear in an error message or on stderr.
-- (TLS verification by default is covered by the TLS specs.)
local H = require "spec.support.helper"

local SECRET_COOKIE = "c00kieS3cretVALUE8d1f"
local SECRET_AUTH = "auThS3cretTOKEN77aa0b"

-- Starts spec/servers/ws_idle_peer.py in a mode; returns it with .port and .url.
local function idle_peer(mode)
  local p = H.spawn({ H.python, "-u", H.src .. "/spec/servers/ws_idle_peer.py", "--mode", mode },
    { name = "ws_idle_peer " .. mode })
  local _, port = p:wait_line("^PORT (%d+)$", 10)
  p.port = tonumber(port)
  p.url = "ws://127.0.0.1:" .. port .. "/"
  return p
end

local function assert_no_secret(res)
  for _, s in ipairs { SECRET_COOKIE, SECRET_AUTH } do
    assert(not res.stdout:find(s, 1, true), "a secret header value reached stdout\n" .. H.describe(res))
    assert(not res.stderr:find(s, 1, true), "a secret header value reached stderr\n" .. H.describe(res))
  end
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function b64decode(s)
  local bits, out = 0, {}
  local acc, n = 0, 0
  for ch in s:gmatch("[^=]") do
    local v = B64:find(ch, 1, true)
    assert(v, "not base64: " .. s)
    acc, n = acc * 64 + (v - 1), n + 6
    if n >= 8 then
      n = n - 8
      out[#out + 1] = string.char((acc >> n) & 0xff)
      acc = acc & ((1 << n) - 1)
    end
  end
  return table.concat(out)
end

local function popcount(bytes)
  local c = 0
  for i = 1, #bytes do
    local b = bytes:byte(i)
    while b > 0 do c, b = c + (b & 1), b >> 1 end
  end
  return c
end

describe("security (issue 6)", function()
  after_each(H.cleanup)

  it("CR, LF or NUL in a header name or value, websocketOrigin or websocketClientProtocol is refused before anything is sent",
    function()
      local srv = H.server("echo", { "--framing", "raw" })
      local res = H.run([==[
        local mw = require "moonwire"
        local secret = { Cookie = "sid=]==] .. SECRET_COOKIE .. [==[", Authorization = "Bearer ]==] .. SECRET_AUTH .. [==[" }
        local function with(extra)
          local h = {}
          for k, v in pairs(secret) do h[k] = v end
          for k, v in pairs(extra) do h[k] = v end
          return h
        end
        local async = {   -- refused at connect: onError, then onClose; no handshake
          { "name CRLF", function(c) c.headers = with { ["X-A\r\nX-Injected"] = "1" } end },
          { "name NUL", function(c) c.headers = with { ["X-A\0B"] = "1" } end },
          { "name space", function(c) c.headers = with { ["X A"] = "1" } end },
          { "value LF", function(c) c.headers = with { ["X-Trace"] = "a\nX-Injected: 1" } end },
          { "value CR", function(c) c.headers = with { ["X-Trace"] = "a\rb" } end },
          { "value NUL", function(c) c.headers = with { ["X-Trace"] = "a\0b" } end },
          { "cookie CRLF", function(c) c.headers = { Cookie = "sid=]==] .. SECRET_COOKIE .. [==[\r\nX-Injected: 1" } end },
          { "auth NUL", function(c) c.headers = { Authorization = "Bearer ]==] .. SECRET_AUTH .. [==[\0" } end },
          { "origin CRLF", function(c) c.headers = secret; c.websocketOrigin = "https://a.example\r\nX-Injected: 1" end },
          { "origin LF", function(c) c.websocketOrigin = "https://a.example\n" end },
          { "protocol CRLF", function(c) c.headers = secret; c.websocketClientProtocol = "chat\r\nX-Injected: 1" end },
        }
        local sync = {    -- refused when set: the script gets an error at once
          { "origin NUL", function(c) c.websocketOrigin = "https://a.example\0X" end },
          { "protocol NUL", function(c) c.websocketClientProtocol = "chat\0x" end },
          { "path CRLF", function() mw.AsyncTcpConnection.new(arg[1] .. "/a\r\nX-Injected: 1") end },
          { "path NUL", function() mw.AsyncTcpConnection.new(arg[1] .. "/a\0b") end },
        }
        for _, case in ipairs(sync) do
          local c = mw.AsyncTcpConnection.new(arg[1])
          local ok, err = pcall(case[2], c)
          print("SYNC", case[1], ok and "accepted" or "raised", err and err:match("must not contain a NUL byte")
            or err and err:match("invalid URL") or err)
        end
        for _, case in ipairs(async) do
          local c = mw.AsyncTcpConnection.new(arg[1])
          case[2](c)
          local errors, closes = 0, 0
          c.onWebSocketConnect = function(conn) print("OPENED", case[1]) end
          c.onError = function(conn, code, msg)
            errors = errors + 1
            print("ERROR", case[1], code == mw.errors.HANDSHAKE_FAIL, msg:find("refused: ", 1, true) ~= nil,
              msg:find("nothing was sent", 1, true) ~= nil)
            io.stderr:write(msg, "\n")
          end
          c.onClose = function() closes = closes + 1; print("CLOSED", case[1], errors, closes) end
          c:connect()
        end
      ]==], { "ws://127.0.0.1:" .. srv.port })
      H.assert_exit(res, 0)
      assert_no_secret(res)
      local sync = H.grep(res.lines, "^SYNC")
      assert.same({ "SYNC\torigin NUL\traised\tmust not contain a NUL byte",
        "SYNC\tprotocol NUL\traised\tmust not contain a NUL byte",
        "SYNC\tpath CRLF\traised\tinvalid URL", "SYNC\tpath NUL\traised\tinvalid URL" }, sync)
      assert.equal(0, H.count(res.lines, "^OPENED"))
      assert.equal(11, H.count(res.lines, "^ERROR\t.*\ttrue\ttrue\ttrue$"), H.describe(res))
      assert.equal(11, H.count(res.lines, "^CLOSED\t.*\t1\t1$"), H.describe(res))
      -- the messages name the field, never its value
      assert(res.stderr:find('header "Cookie" has a CR, LF or NUL in its value', 1, true), res.stderr)
      assert(res.stderr:find('header "Authorization" has a CR, LF or NUL in its value', 1, true), res.stderr)
      assert(not res.stderr:find("[\r\n]X%-Injected"), "an injected line was printed raw\n" .. res.stderr)
      -- refused before connecting: the server saw no connection and no byte (that no
      -- connection is made is proved against a control connection in connect_spec.lua)
      assert.equal(0, #srv:grep("^CONNECT"))
      assert.equal(0, #srv:grep("^RECV"))
    end)

  it("Sec-WebSocket-Key and mask keys come from wolfCrypt's RNG: 1,000 connections, all distinct, none zero",
    function()
      -- The code path: proto_ws.c gives the engine no random callback, so ws_client uses
      -- mw_random, which is wolfCrypt's wc_RNG_GenerateBlock.
      local function read(path)
        local f = assert(io.open(H.src .. "/" .. path))
        local t = f:read("a")
        f:close()
        return t
      end
      assert(not read("src/proto_ws.c"):find("%.random%s*="), "proto_ws.c sets its own random source")
      assert(read("src/ws/ws_client.c"):find("return mw_random%(out, n%)"), "ws_client does not fall back to mw_random")
      assert(read("src/crypto.c"):find("wc_RNG_GenerateBlock", 1, true), "mw_random is not wolfCrypt's RNG")

      local srv = idle_peer("report")
      local N = 1000
      local res = H.run([==[
        local mw = require "moonwire"
        local N, closed = tonumber(arg[2]), 0
        for i = 1, N do
          local c = mw.AsyncTcpConnection.new(arg[1])
          c.onWebSocketConnect = function(conn) conn:sendBinary("x"); conn:close() end
          c.onError = function(_, code, msg) print("ERROR", msg) end
          c.onClose = function()
            closed = closed + 1
            if closed == N then print("ALL CLOSED", closed) end
          end
          c:connect()
        end
      ]==], { srv.url, N }, { timeout = 60 })
      H.assert_exit(res, 0)
      assert.same({ "ALL CLOSED\t" .. N }, res.lines)
      srv:close_stdin()
      srv:wait(20)
      local keys, masks, nkeys, nmasks, zero_masks, bits, nbytes = {}, {}, 0, 0, 0, 0, 0
      for _, l in ipairs(srv.lines) do
        local key = l:match("^KEY %d+ (%S+)$")
        if key then
          assert.equal(24, #key)
          local raw = b64decode(key)
          assert.equal(16, #raw)
          assert(raw ~= ("\0"):rep(16), "an all-zero Sec-WebSocket-Key")
          if not keys[key] then nkeys = nkeys + 1 end
          keys[key] = true
          bits, nbytes = bits + popcount(raw), nbytes + 16
        end
        local mask = l:match("^MASK %d+ %d+ %d+ (%x+)$")
        if mask then
          if not masks[mask] then nmasks = nmasks + 1 end
          masks[mask] = true
          if mask == "00000000" then zero_masks = zero_masks + 1 end
          bits, nbytes = bits + popcount(mask:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)), nbytes + 4
        end
      end
      local nframes = #srv:grep("^MASK ")
      print(string.format("\n  %d keys (%d distinct), %d masked frames (%d distinct masks), %.4f of bits set",
        #srv:grep("^KEY "), nkeys, nframes, nmasks, bits / (nbytes * 8)))
      assert.equal(N, nkeys)
      assert.equal(2 * N, nframes)                 -- one message and one close frame each
      assert.equal(0, #srv:grep("^MASK %d+ %d+ %d+ none$"))
      -- 2,000 random 32-bit keys collide with probability ~5e-4; allow one collision
      assert(nmasks >= nframes - 1, nmasks .. " distinct mask keys of " .. nframes)
      assert.equal(0, zero_masks)
      local ratio = bits / (nbytes * 8)
      assert(ratio > 0.48 and ratio < 0.52, "bit balance " .. ratio)
    end)

  it("handshake failures never print Cookie or Authorization values, whatever the server echoes back",
    function()
      local modes = {
        { "403", "HTTP/1.1 403 Forbidden" },
        { "200", "HTTP/1.1 200 OK" },
        { "reflect", "malformed HTTP response" },
        { "reflect-status", "HTTP/1.1 403 *** ***" },   -- redacted, not echoed
        { "badkey", "invalid Sec-WebSocket-Accept" },
        { "huge", "response head exceeds" },
        { "hangup", "connection closed by the server" },
        { "silent", "timed out" },
      }
      for _, m in ipairs(modes) do
        local srv = idle_peer(m[1])
        -- with an onError that prints the message, and without one (moonwire prints it)
        local res = H.run([==[
          local mw = require "moonwire"
          local done = 0
          for i = 1, 2 do
            local c = mw.AsyncTcpConnection.new(arg[1])
            c.headers = { Cookie = "sid=]==] .. SECRET_COOKIE .. [==[; theme=dark",
                          Authorization = "Bearer ]==] .. SECRET_AUTH .. [==[", ["X-Other"] = "visible" }
            c.websocketOrigin = "https://bot.example"
            c.handshakeTimeout = 0.3
            if i == 1 then
              c.onError = function(conn, code, msg) print("ERROR", code, msg) end
            end
            c.onWebSocketConnect = function(conn) print("OPENED") end
            c.onClose = function() done = done + 1; print("CLOSED", i) end
            c:connect()
          end
        ]==], { srv.url }, { timeout = 20 })
        H.assert_exit(res, 0)
        assert_no_secret(res)
        assert.equal(0, H.count(res.lines, "^OPENED"))
        assert.equal(2, H.count(res.lines, "^CLOSED"))
        local err = H.grep(res.lines, "^ERROR")
        assert.equal(1, #err, H.describe(res))
        assert(err[1]:find(m[2], 1, true), m[1] .. ": the message does not say " .. m[2] .. "\n" .. H.describe(res))
        assert(err[1]:find("\t" .. 5 .. "\t", 1, true) or err[1]:find("\t" .. 8 .. "\t", 1, true),
          "not a handshake or timeout code: " .. err[1])
        assert(res.stderr:find(m[2], 1, true), m[1] .. ": no message on stderr without onError\n" .. H.describe(res))
        -- the secrets did reach the server (and, except for hangup/silent, came back)
        srv:wait_line("^REQUEST ")
        srv:wait_line("^REQUEST ")
        H.cleanup()
      end
    end)
end)
