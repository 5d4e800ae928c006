-- Issue 4: TLS with wolfSSL. wss:// and transport = "ssl" against real TLS servers
-- (Python's ssl and websockets, nginx in front of a ws server), with certificates made at
-- test time: verification by default, distinct errors a user can act on, client
-- certificates, TLS 1.3, session resumption on reConnect, large messages, backpressure,
-- and handshakes that stall or end early.
local H = require "spec.support.helper"
local T = require "spec.support.tls"

-- One client for most cases. arg: url, ssl options (Lua literal), mode, transport.
--   once    send "hello 1" once connected (ws: after the upgrade), close on the echo
--   resume  the same, then reConnect(0) after the first echo: two connections
local CLIENT = [==[
local mw = require "moonwire"
local url, sslopts, mode, transport = arg[1], load("return " .. arg[2])(), arg[3] or "once", arg[4]
local c = mw.AsyncTcpConnection.new(url, { ssl = sslopts })
c.handshakeTimeout = tonumber(os.getenv("HS_TIMEOUT") or "5")
if transport and transport ~= "" then c.transport = transport end
local n, ws = 0, url:match("^wss?://") ~= nil
local function info(conn)
  local i = conn:tlsInfo()
  if not i then return "notls" end
  return string.format("%s resumed=%s alpn=%s cipher=%s", i.version, tostring(i.resumed),
    i.alpn or "-", i.cipher)
end
c.onConnect = function(conn)
  n = n + 1
  print("CONNECT " .. n .. " " .. info(conn) .. " transport=" .. conn.transport)
  if not ws then conn:send("hello " .. n .. (url:match("^tcp") and "\n" or "")) end
end
c.onWebSocketConnect = function(conn)
  print("WSCONNECT " .. n)
  conn:send("hello " .. n)
end
c.onMessage = function(conn, data)
  print("MSG " .. (data:gsub("\n$", "")))
  if mode == "resume" and n < 2 then conn:reConnect(0) else conn:close() end
end
c.onError = function(conn, code, msg) print("ERROR " .. code .. " " .. msg) end
c.onClose = function() print("CLOSE") end
c:connect()
]==]

local function client(url, opts, mode, transport, env)
  return H.run(CLIENT, { url, opts or "{}", mode or "once", transport or "" }, { env = env })
end

local function cafile() return T.certs() .. "/ca.pem" end
local function ca_opts(extra)
  return string.format("{cafile = %q%s}", cafile(), extra and (", " .. extra) or "")
end

-- The lines of a run in one string, for messages.
local function out(res) return H.describe(res) end

local function errors(res) return H.grep(res.lines, "^ERROR ") end

-- Exactly one onError with code TLS_FAIL (4) and message msg, then onClose; no connect.
local function assert_refused(res, msg, code)
  H.assert_exit(res, 0)
  code = code or 4
  assert.same({ "ERROR " .. code .. " " .. msg, "CLOSE" }, res.lines, out(res))
end

describe("TLS (issue 4)", function()
  after_each(H.cleanup)
  teardown(T.remove_certs)

  describe("a valid chain with cafile", function()
    it("connects to Python websockets over wss://, negotiates TLS 1.3 and sends SNI", function()
      local srv = T.server("ws")
      local url = "wss://localhost:" .. srv.port .. "/echo"
      local res = client(url, ca_opts())
      H.assert_exit(res, 0)
      assert.equal(0, #errors(res), out(res))
      assert.matches("^CONNECT 1 TLSv1%.3 resumed=false alpn=%- cipher=TLS_AES_%d+_GCM_SHA%d+ transport=ssl$",
        res.lines[1])
      assert.same({ "WSCONNECT 1", "MSG hello 1", "CLOSE" }, { res.lines[2], res.lines[3], res.lines[4] })
      srv:wait_line("^TLS TLSv1%.3 reused=0 sni=localhost alpn=%- peer=%-$")
      srv:wait_line("^CONNECT /echo$")
      srv:wait_line("^CLOSE$")
    end)

    it("connects through nginx terminating TLS in front of a ws server", function()
      local backend = T.server("ws", false, { "--plain" })
      local ngx = T.nginx(backend.port)
      local res = client("wss://localhost:" .. ngx.port .. "/via-nginx", ca_opts())
      H.assert_exit(res, 0)
      assert.equal(0, #errors(res), out(res))
      assert.matches("^CONNECT 1 TLSv1%.3 resumed=false", res.lines[1])
      assert.same({ "WSCONNECT 1", "MSG hello 1", "CLOSE" }, { res.lines[2], res.lines[3], res.lines[4] })
      backend:wait_line("^CONNECT /via%-nginx$")
      backend:wait_line("^MSG text 7 ")
    end)

    it("verifies an IP literal against an IP SAN and sends no SNI for it", function()
      local srv = T.server("ws")
      local res = client("wss://127.0.0.1:" .. srv.port .. "/", ca_opts())
      H.assert_exit(res, 0)
      assert.equal(0, #errors(res), out(res))
      assert.equal("MSG hello 1", res.lines[3])
      srv:wait_line("^TLS TLSv1%.3 reused=0 sni=%- ")
    end)

    it("peer_name sets SNI and the name verified, wildcards match one label", function()
      local srv = T.server("ws", "wild")
      local url = "wss://127.0.0.1:" .. srv.port .. "/"
      local res = client(url, ca_opts('peer_name = "a.wild.test"'))
      H.assert_exit(res, 0)
      assert.equal("MSG hello 1", res.lines[3], out(res))
      srv:wait_line("^TLS TLSv1%.3 reused=0 sni=a%.wild%.test ")
      res = client(url, ca_opts('peer_name = "a.b.wild.test"'))
      assert_refused(res, "tls handshake with " .. url ..
        ": hostname mismatch: certificate is for *.wild.test, not a.b.wild.test")
    end)

    it("negotiates ALPN from a list (tlsInfo().alpn)", function()
      local srv = T.server("ws", nil, { "--alpn", "http/1.1" })
      local res = client("wss://localhost:" .. srv.port .. "/", ca_opts('alpn = {"h2", "http/1.1"}'))
      H.assert_exit(res, 0)
      assert.matches("alpn=http/1%.1", res.lines[1])
      srv:wait_line("alpn=http/1%.1")
    end)

    it("speaks TLS 1.2 to a server that stops there", function()
      local srv = T.server("echo", nil, { "--max-tls", "1.2" })
      local res = client("text://localhost:" .. srv.port, ca_opts(), "once", "ssl")
      H.assert_exit(res, 0)
      assert.matches("^CONNECT 1 TLSv1%.2 resumed=false alpn=%- cipher=TLS_ECDHE_ECDSA_WITH_AES_%d+_GCM_SHA%d+ transport=ssl$",
        res.lines[1])
      assert.equal("MSG hello 1", res.lines[2])
    end)
  end)

  describe("verification refuses, each failure in its own words", function()
    it("a self-signed server by default, using the system CA store", function()
      local srv = T.server("ws", "self")
      local url = "wss://localhost:" .. srv.port .. "/"
      assert_refused(client(url, "{}"),
        "tls handshake with " .. url .. ": certificate verify failed for localhost: self-signed certificate")
    end)

    it("a CA-signed server whose CA is only in cafile, by default (system store)", function()
      local srv = T.server("ws")
      local url = "wss://localhost:" .. srv.port .. "/"
      assert_refused(client(url, "{}"), "tls handshake with " .. url ..
        ": certificate verify failed for localhost: unknown certificate authority (issuer /CN=moonwire test CA)")
    end)

    it("a wrong hostname", function()
      local srv = T.server("ws", "other")
      local url = "wss://localhost:" .. srv.port .. "/"
      assert_refused(client(url, ca_opts()), "tls handshake with " .. url ..
        ": hostname mismatch: certificate is for other.test, not localhost")
    end)

    it("an expired certificate", function()
      local srv = T.server("ws", "expired")
      local url = "wss://localhost:" .. srv.port .. "/"
      assert_refused(client(url, ca_opts()), "tls handshake with " .. url ..
        ": certificate verify failed for localhost: certificate expired (not valid after Feb  1 00:00:00 2020 GMT)")
    end)

    it("an unknown CA", function()
      local srv = T.server("ws", "unknown")
      local url = "wss://localhost:" .. srv.port .. "/"
      assert_refused(client(url, ca_opts()), "tls handshake with " .. url ..
        ": certificate verify failed for localhost: unknown certificate authority (issuer /CN=moonwire rogue CA)")
      -- allow_self_signed does not stretch to a certificate from an unknown CA
      assert_refused(client(url, ca_opts("allow_self_signed = true")), "tls handshake with " .. url ..
        ": certificate verify failed for localhost: unknown certificate authority (issuer /CN=moonwire rogue CA)")
    end)

    it("a missing cafile, before any byte of TLS is sent", function()
      local srv = T.server("ws")
      local url = "wss://localhost:" .. srv.port .. "/"
      local bad = T.certs() .. "/nope.pem"
      assert_refused(client(url, string.format("{cafile = %q}", bad)),
        "tls " .. url .. ": cannot load CA certificates from " .. bad .. " (ssl.cafile): No such file or directory")
    end)
  end)

  describe("relaxed verification", function()
    it("verify_peer = false connects to a self-signed server", function()
      local srv = T.server("ws", "self")
      local res = client("wss://localhost:" .. srv.port .. "/", "{verify_peer = false}")
      H.assert_exit(res, 0)
      assert.same("MSG hello 1", res.lines[3], out(res))
    end)

    it("allow_self_signed = true connects to a self-signed server", function()
      local srv = T.server("ws", "self")
      local res = client("wss://localhost:" .. srv.port .. "/", "{allow_self_signed = true}")
      H.assert_exit(res, 0)
      assert.same("MSG hello 1", res.lines[3], out(res))
    end)

    it("verify_peer_name = false accepts another name; the chain is still verified", function()
      local srv = T.server("ws", "other")
      local url = "wss://localhost:" .. srv.port .. "/"
      local res = client(url, ca_opts("verify_peer_name = false"))
      H.assert_exit(res, 0)
      assert.same("MSG hello 1", res.lines[3], out(res))
      assert_refused(client(url, "{verify_peer_name = false}"), "tls handshake with " .. url ..
        ": certificate verify failed for localhost: unknown certificate authority (issuer /CN=moonwire test CA)")
    end)

    it("verify_peer = false still checks the name unless verify_peer_name = false (as PHP)", function()
      local srv = T.server("ws", "other")
      local url = "wss://localhost:" .. srv.port .. "/"
      assert_refused(client(url, "{verify_peer = false}"), "tls handshake with " .. url ..
        ": hostname mismatch: certificate is for other.test, not localhost")
      local res = client(url, "{verify_peer = false, verify_peer_name = false}")
      assert.same("MSG hello 1", res.lines[3], out(res))
    end)
  end)

  describe("client certificates", function()
    local function with_cert()
      local d = T.certs()
      return ca_opts(string.format("local_cert = %q, local_pk = %q", d .. "/client.pem", d .. "/client.key"))
    end

    it("a server that requires one accepts local_cert/local_pk (TLS 1.3 and 1.2)", function()
      for _, v in ipairs { "1.3", "1.2" } do
        local srv = T.server("echo", nil, { "--client-ca", cafile(), "--max-tls", v })
        local res = client("text://localhost:" .. srv.port, with_cert(), "once", "ssl")
        H.assert_exit(res, 0)
        assert.matches("^CONNECT 1 TLSv" .. v:gsub("%.", "%%."), res.lines[1], nil, false)
        assert.equal("MSG hello 1", res.lines[2], out(res))
        srv:wait_line("^TLS TLSv" .. v:gsub("%.", "%%.") .. " reused=0 sni=localhost alpn=%- peer=moonwire client$")
      end
    end)

    it("and refuses a client without one: TLS 1.3 says certificate_required after the handshake", function()
      local srv = T.server("echo", nil, { "--client-ca", cafile() })
      local url = "text://localhost:" .. srv.port
      local res = client(url, ca_opts(), "once", "ssl")
      H.assert_exit(res, 0)
      -- in TLS 1.3 the client's handshake ends before the server judges its certificate
      assert.matches("^CONNECT 1 TLSv1%.3", res.lines[1])
      assert.same({ "ERROR 4 tls read " .. url .. ": the server sent alert certificate_required (116): " ..
        "it requires a client certificate (set ssl.local_cert and ssl.local_pk)", "CLOSE" },
        { res.lines[2], res.lines[3] }, out(res))
      srv:wait_line("^TLSFAIL ")
    end)

    it("and refuses a client without one: TLS 1.2 fails the handshake", function()
      local srv = T.server("echo", nil, { "--client-ca", cafile(), "--max-tls", "1.2" })
      local url = "text://localhost:" .. srv.port
      assert_refused(client(url, ca_opts(), "once", "ssl"),
        "tls handshake with " .. url .. ": the server sent alert handshake_failure (40)")
    end)
  end)

  describe('transport = "ssl"', function()
    it("works for text://, tcp://, frame:// and ws:// (wss:// implies it)", function()
      local line = T.server("echo")
      local res = client("text://localhost:" .. line.port, ca_opts(), "once", "ssl")
      H.assert_exit(res, 0)
      assert.same({ "MSG hello 1", "CLOSE" }, { res.lines[2], res.lines[3] }, out(res))
      line:wait_line("^LINE hello 1$")

      local raw = T.server("echo", nil, { "--raw" })
      for _, scheme in ipairs { "tcp", "frame" } do
        res = client(scheme .. "://localhost:" .. raw.port, ca_opts(), "once", "ssl")
        H.assert_exit(res, 0)
        assert.matches("^CONNECT 1 TLSv1%.3 .* transport=ssl$", res.lines[1], nil, false)
        assert.same({ "MSG hello 1", "CLOSE" }, { res.lines[2], res.lines[3] }, out(res))
      end

      local ws = T.server("ws")
      res = client("ws://localhost:" .. ws.port .. "/plain-scheme", ca_opts(), "once", "ssl")
      H.assert_exit(res, 0)
      assert.same({ "WSCONNECT 1", "MSG hello 1" }, { res.lines[2], res.lines[3] }, out(res))
      ws:wait_line("^CONNECT /plain%-scheme$")
    end)

    it("conn.context = {ssl = ...} after new() is read at connect", function()
      local srv = T.server("ws")
      local res = H.run([==[
        local mw = require "moonwire"
        local c = mw.AsyncTcpConnection.new(arg[1])
        print("TRANSPORT " .. c.transport)
        c.context = { ssl = { cafile = arg[2] } }
        c.onWebSocketConnect = function(conn) print("OK " .. conn:tlsInfo().version); conn:close() end
        c.onError = function(_, code, msg) print("ERROR", code, msg) end
        c:connect()
      ]==], { "wss://localhost:" .. srv.port .. "/", cafile() })
      H.assert_exit(res, 0)
      assert.same({ "TRANSPORT ssl", "OK TLSv1.3" }, res.lines)
    end)

    it("malformed options raise at connect (misuse), naming the option", function()
      local res = H.run([==[
        local mw = require "moonwire"
        local function try(opts)
          local c = mw.AsyncTcpConnection.new("wss://localhost:1/", { ssl = opts })
          local ok, err = pcall(c.connect, c)
          print(ok, err)
        end
        try({ verify_peer = "no" })
        try({ cafile = 42 })
        try({ alpn = { "h2", "" } })
        try("nope")
        local c = mw.AsyncTcpConnection.new("text://localhost:1")
        print(pcall(function() c.transport = "quic" end))
        c.transport = "ssl"; print(c.transport)
        c.transport = "tcp"; print(c.transport)
      ]==])
      H.assert_exit(res, 0)
      assert.same({
        "false\tcontext.ssl.verify_peer must be a boolean",
        "false\tcontext.ssl.cafile must be a string",
        "false\tcontext.ssl.alpn: protocol names are 1 to 255 bytes without commas",
        "false\tcontext.ssl must be a table of TLS options",
      }, { res.lines[1], res.lines[2], res.lines[3], res.lines[4] })
      assert.matches('unknown transport "quic"', res.lines[5], nil, true)
      assert.same({ "ssl", "tcp" }, { res.lines[6], res.lines[7] })
    end)
  end)

  describe("reConnect", function()
    it("resumes the TLS 1.3 session (Python websockets and nginx)", function()
      local srv = T.server("ws")
      local res = client("wss://localhost:" .. srv.port .. "/", ca_opts(), "resume")
      H.assert_exit(res, 0)
      assert.equal(0, #errors(res), out(res))
      assert.same({ "CONNECT 1 TLSv1.3 resumed=false", "CONNECT 2 TLSv1.3 resumed=true" },
        { res.lines[1]:match("^CONNECT %d %S+ %S+"), H.grep(res.lines, "^CONNECT 2")[1]:match("^CONNECT %d %S+ %S+") })
      srv:wait_line("^TLS TLSv1%.3 reused=0 ")
      srv:wait_line("^TLS TLSv1%.3 reused=1 ")

      local backend = T.server("ws", false, { "--plain" })
      local ngx = T.nginx(backend.port)
      res = client("wss://localhost:" .. ngx.port .. "/", ca_opts(), "resume")
      H.assert_exit(res, 0)
      assert.equal(2, H.count(res.lines, "^MSG hello %d$"), out(res))
      assert.matches("resumed=true", H.grep(res.lines, "^CONNECT 2")[1], nil, true)
    end)

    it("resumes a TLS 1.2 session too", function()
      local srv = T.server("echo", nil, { "--max-tls", "1.2" })
      local res = client("text://localhost:" .. srv.port, ca_opts(), "resume", "ssl")
      H.assert_exit(res, 0)
      assert.matches("^CONNECT 1 TLSv1%.2 resumed=false", res.lines[1])
      assert.matches("^CONNECT 2 TLSv1%.2 resumed=true", H.grep(res.lines, "^CONNECT 2")[1])
      srv:wait_line("reused=1")
    end)
  end)

  describe("handshakes that go wrong", function()
    it("a server that stalls mid-handshake: a timeout error within handshakeTimeout", function()
      local srv = T.server("stall", false)
      local url = "wss://localhost:" .. srv.port .. "/"
      local res = H.run(CLIENT, { url, "{}" }, { env = { HS_TIMEOUT = "0.5" } })
      assert_refused(res, "tls handshake with " .. url .. ": timed out after 0.5s", 8)
      assert.is_true(res.elapsed < 3 * H.slow, "took " .. res.elapsed)
      srv:wait_line("^ACCEPT$")
    end)

    it("a server that closes mid-handshake: an error at once, never a hang", function()
      local srv = T.server("hangup", false)
      local url = "wss://localhost:" .. srv.port .. "/"
      local res = client(url, "{}")
      assert_refused(res, "tls handshake with " .. url .. ": the server closed the connection during the handshake")
      assert.is_true(res.elapsed < 3 * H.slow, "took " .. res.elapsed)
    end)

    it("a plain-TCP server spoken to in TLS: an error, not a hang", function()
      local srv = T.server("echo", false, { "--plain", "--raw" }) -- our ClientHello comes back
      local url = "text://localhost:" .. srv.port
      local res = H.run(CLIENT, { url, "{}", "once", "ssl" }, { env = { HS_TIMEOUT = "3" } })
      H.assert_exit(res, 0)
      assert.equal(1, #errors(res), out(res))
      assert.matches("^ERROR 4 tls handshake with " .. url:gsub("%p", "%%%0") .. ": ", errors(res)[1])
      assert.is_true(res.elapsed < 3 * H.slow, "took " .. res.elapsed)
    end)
  end)

  describe("data over TLS", function()
    it("16 MiB messages each way arrive intact over wss://", function()
      local srv = T.server("ws")
      local n = 16 * 1024 * 1024
      local res = H.run([==[
        local mw = require "moonwire"
        local N = tonumber(arg[3])
        local function pattern(n, seed)
          local t = {}
          for i = 0, 250 do t[#t + 1] = string.char((i * 7 + seed) % 251) end
          local block = table.concat(t)
          return string.rep(block, n // 251 + 1):sub(1, n)
        end
        local down, up = pattern(N, 3), pattern(N, 5)
        local c = mw.AsyncTcpConnection.new(arg[1], { ssl = { cafile = arg[2] } })
        c.maxPackageSize = 64 * 1024 * 1024
        c.websocketType = "arraybuffer"
        local got = 0
        c.onWebSocketConnect = function(conn) print("SEND", conn:send(up)) end
        c.onMessage = function(conn, data, kind)
          got = got + 1
          if got == 1 then print("DOWN", kind, #data, data == down)
          else print("UP", kind, #data, data == up); conn:close() end
        end
        c.onError = function(_, code, msg) print("ERROR", code, msg) end
        c.onClose = function(conn) print("BYTES", conn.bytesRead > 2 * N, conn.bytesWritten > N) end
        c:connect()
      ]==], { "wss://localhost:" .. srv.port .. "/send/" .. n, cafile(), n }, { timeout = 60 })
      H.assert_exit(res, 0)
      assert.same({ "SEND\ttrue", "DOWN\tbinary\t" .. n .. "\ttrue", "UP\tbinary\t" .. n .. "\ttrue",
        "BYTES\ttrue\ttrue" }, res.lines)
      srv:wait_line("^MSG binary " .. n .. " ")
    end)

    it("backpressure: maxSendBufferSize, onBufferFull once, onBufferDrain when the server reads", function()
      local srv = T.server("sink", nil, { "--read-after", "1.5", "--rcvbuf", "65536" })
      local res = H.run([==[
        local mw = require "moonwire"
        local MAX, CHUNK = 1024 * 1024, 65536
        local chunk = string.rep("x", CHUNK)
        local c = mw.AsyncTcpConnection.new(arg[1], { ssl = { cafile = arg[2] } })
        c.transport = "ssl"
        c.maxSendBufferSize = MAX
        local accepted, fulls, drains, maxq, t0, filling = 0, 0, 0, 0, nil, true
        local function fill(conn)
          while conn:send(chunk) do accepted = accepted + CHUNK end
          maxq = math.max(maxq, conn:getSendBufferQueueSize())
        end
        c.onBufferFull = function() fulls = fulls + 1 end
        c.onBufferDrain = function(conn)
          drains = drains + 1
          if filling then return end -- the kernel took a queue early on: a new episode follows
          print("DRAIN", fulls == drains, conn:bufferFull(), conn:getSendBufferQueueSize(), mw.now() - t0 > 1.3)
          conn:close()
        end
        c.onConnect = function(conn)
          t0 = mw.now()
          fill(conn)
          print("BURST", accepted == MAX, conn:bufferFull())
          -- refill for a second: the kernel's buffers fill up and the queue stays full
          local tid
          tid = mw.Timer.add(0.01, function()
            if mw.now() - t0 < 1.0 then fill(conn); return end
            mw.Timer.del(tid)
            filling = false
            print("STALLED", conn:getSendBufferQueueSize() > 0, maxq <= MAX + CHUNK, fulls == drains + 1)
          end)
        end
        c.onError = function(_, code, msg) if code ~= mw.errors.SEND_FAIL then print("ERROR", code, msg) end end
        c.onClose = function(conn) print("CLOSE", conn.bytesWritten == accepted); print("ACCEPTED " .. accepted) end
        c:connect()
      ]==], { "tcp://localhost:" .. srv.port, cafile() }, { timeout = 30 })
      H.assert_exit(res, 0)
      assert.same({ "BURST\ttrue\ttrue", "STALLED\ttrue\ttrue\ttrue", "DRAIN\ttrue\tfalse\t0\ttrue",
        "CLOSE\ttrue" }, { res.lines[1], res.lines[2], res.lines[3], res.lines[4] }, out(res))
      local accepted = res.lines[5]:match("^ACCEPTED (%d+)$")
      srv:wait_line("^READ " .. accepted .. "$")
    end)

    it("pauseRecv/resumeRecv: bytes wolfSSL already decrypted are delivered after resume", function()
      local srv = T.server("ws")
      local n = 4 * 1024 * 1024
      local res = H.run([==[
        local mw = require "moonwire"
        local c = mw.AsyncTcpConnection.new(arg[1], { ssl = { cafile = arg[2] } })
        c.maxPackageSize = 64 * 1024 * 1024
        local paused_at
        c.onWebSocketConnect = function(conn)
          conn:pauseRecv()
          mw.Timer.add(0.3, function()
            paused_at = conn.bytesRead
            mw.Timer.add(0.5, function()
              print("STILL", conn.bytesRead == paused_at)
              conn:resumeRecv()
            end, nil, false)
          end, nil, false)
        end
        c.onMessage = function(conn, data) print("MSG", #data); conn:close() end
        c.onError = function(_, code, msg) print("ERROR", code, msg) end
        c:connect()
      ]==], { "wss://localhost:" .. srv.port .. "/send/" .. n, cafile() }, { timeout = 30 })
      H.assert_exit(res, 0)
      assert.same({ "STILL\ttrue", "MSG\t" .. n }, res.lines, out(res))
    end)
  end)

  it("valgrind finds no leak or memory error: sessions, SSL objects and contexts are freed", function()
    if H.sanitized then
      pending("valgrind cannot run an ASan binary; the ASan build checks leaks itself")
      return
    end
    local good = T.server("ws")
    local bad = T.server("ws", "other")
    local res = H.run([==[
      local mw = require "moonwire"
      local good, bad, ca = arg[1], arg[2], arg[3]
      -- a resumed reconnect, then a refused handshake, then a connection left to the GC
      local n = 0
      local c = mw.AsyncTcpConnection.new(good, { ssl = { cafile = ca } })
      c.onWebSocketConnect = function(conn)
        n = n + 1
        print("OK", n, conn:tlsInfo().resumed)
        conn:send("x")
      end
      c.onMessage = function(conn) if n < 2 then conn:reConnect(0) else conn:close() end end
      c.onClose = function()
        if n < 2 then return end
        local d = mw.AsyncTcpConnection.new(bad, { ssl = { cafile = ca } })
        d.onError = function(_, code) print("REFUSED", code) end
        d:connect()
      end
      c:connect()
      local e = mw.AsyncTcpConnection.new(good, { ssl = { verify_peer = false, alpn = "http/1.1" } })
      -- closed once connected (under valgrind a handshake may take seconds), then left to the GC
      e.onWebSocketConnect = function(conn)
        print("E")
        conn:close()
        e = nil
        mw.Timer.add(0, function() collectgarbage() end, nil, false)
      end
      e:connect()
    ]==], { "wss://localhost:" .. good.port .. "/", "wss://localhost:" .. bad.port .. "/", cafile() },
      { valgrind = true, timeout = 120 })
    H.assert_exit(res, 0)
    assert.same({ "E", "OK\t1\tfalse", "OK\t2\ttrue", "REFUSED\t4" }, (function()
      local l = {}
      for _, x in ipairs(res.lines) do l[#l + 1] = x end
      table.sort(l)
      return l
    end)(), H.describe(res))
    for line in res.stderr:gmatch("[^\n]+") do
      assert.is_nil(line:find("^==%d+=="), "valgrind reports:\n" .. res.stderr)
    end
  end)

  it("examples/wss_client.lua talks to a wss:// server with a CA file", function()
    local srv = T.server("ws")
    local res = H.run(nil, { "wss://localhost:" .. srv.port .. "/echo", cafile() },
      { path = H.src .. "/examples/wss_client.lua" })
    H.assert_exit(res, 0)
    assert.matches("^connected to wss://localhost:%d+/echo %(TLSv1%.3, TLS_AES_", res.lines[1])
    assert.same({ "echo: hello over TLS", "closed" }, { res.lines[2], res.lines[3] }, out(res))
    assert.equal("", res.stderr)
  end)
end)
