-- TLS files are followed on disk: a bot that runs for weeks takes a rotated CA bundle, a
-- changed capath directory or a renewed client certificate at its next handshake (connect
-- or reConnect), without a restart, and a file that went missing fails that handshake in
-- words. Each case drives one moonwire process through a control line: the spec changes
-- files between steps, the script prints the result of each connection, the spec reacts to
-- the lines. Certificates come from spec/servers/tls_certs.sh: "ca" signs "server" and
-- "client", "rogue-ca" signs "unknown" (localhost) and "client2".
local uv = require "luv"
local H = require "spec.support.helper"
local T = require "spec.support.tls"

-- arg: control port, ssl options (a Lua literal). Commands, one per control line:
--   CONNECT name url   a new connection (text:// gets transport "ssl")
--   RECONNECT name     reConnect(0) it (an open one is torn down first)
--   QUIT               destroy everything; the process ends
-- Results: "OK name <TLS version> resumed=<bool>" once the connection is up (ws: after the
-- upgrade), "ERROR name <code> <message>" from onError.
local SCRIPT = [==[
local mw = require "moonwire"
local ssl = load("return " .. arg[2])()
local ctl = mw.AsyncTcpConnection.new("text://127.0.0.1:" .. arg[1])
local conns = {}
local function open(name, url)
  local c = mw.AsyncTcpConnection.new(url, { ssl = ssl })
  if url:match("^text:") then c.transport = "ssl" end
  local function ok(conn)
    local i = conn:tlsInfo()
    print("OK " .. name .. " " .. i.version .. " resumed=" .. tostring(i.resumed))
  end
  if url:match("^wss:") then c.onWebSocketConnect = ok else c.onConnect = ok end
  c.onError = function(_, code, msg) print("ERROR " .. name .. " " .. code .. " " .. msg) end
  conns[name] = c
  c:connect()
end
ctl.onMessage = function(_, line)
  local cmd, name, url = line:match("^(%u+) ?(%S*) ?(%S*)$")
  if cmd == "CONNECT" then open(name, url)
  elseif cmd == "RECONNECT" then conns[name]:reConnect(0)
  elseif cmd == "QUIT" then
    for _, c in pairs(conns) do c:destroy() end
    ctl:close()
  end
end
ctl.onError = function(_, code, msg) print("CONTROL " .. code .. " " .. msg) end
ctl:connect()
]==]

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- in place: the same inode, truncated and written again (cp, shell redirection)
local function rewrite(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

-- as deployment tools do it: a new file renamed over the old one (a new inode)
local function replace(path, data)
  rewrite(path .. ".new", data)
  assert(os.rename(path .. ".new", path))
end

local function stat(path) return assert(uv.fs_stat(path)) end

local function cert(name) return read(T.certs() .. "/" .. name) end

describe("TLS files followed on disk", function()
  local ctl, proc

  local function start(ssl)
    ctl = T.control()
    proc = H.start(SCRIPT, { ctl.port, ssl })
  end

  -- Sends a command and returns the result line it gets.
  local function step(cmd)
    local name = cmd:match("^%u+ (%S+)")
    ctl:send(cmd)
    return (proc:wait_line("^%u+ " .. name:gsub("%p", "%%%0") .. " ", 20))
  end

  -- Ends the script; it exits 0 with nothing on stderr (under ASan: no leak, so every
  -- context, the replaced ones too, was freed).
  local function finish()
    ctl:send("QUIT")
    proc:wait(20)
    local res = { code = proc.code, signal = proc.signal, timed_out = not proc.exited, lines = proc.lines,
      stdout = proc:stdout_text(), stderr = proc:stderr_text() }
    H.assert_exit(res, 0)
    assert.equal("", res.stderr, H.describe(res))
    assert.same({}, H.grep(res.lines, "^CONTROL "), H.describe(res))
  end

  after_each(function()
    if ctl then ctl:close() end
    ctl, proc = nil, nil
    H.cleanup()
  end)
  teardown(T.remove_certs)

  local function refused(name, url, issuer)
    return "ERROR " .. name .. " 4 tls handshake with " .. url ..
      ": certificate verify failed for localhost: unknown certificate authority (issuer /CN=" .. issuer .. ")"
  end

  it("cafile: a rotated CA (renamed over, then rewritten in place) verifies the next handshake", function()
    local trust = H.tmpdir() .. "/trust.pem"
    replace(trust, cert("ca.pem"))
    local p1, p2 = T.server("ws"), T.server("ws", "unknown") -- signed by ca, by rogue-ca
    local url1, url2 = "wss://localhost:" .. p1.port .. "/", "wss://localhost:" .. p2.port .. "/"
    start(string.format("{cafile = %q}", trust))

    assert.equal("OK a TLSv1.3 resumed=false", step("CONNECT a " .. url1))
    assert.equal(refused("b", url2, "moonwire rogue CA"), step("CONNECT b " .. url2))
    -- nothing changed: the same context, so the session is resumed
    assert.equal("OK a TLSv1.3 resumed=true", step("RECONNECT a"))

    local before = stat(trust).ino
    replace(trust, cert("rogue-ca.pem"))
    assert.are_not.equal(before, stat(trust).ino)
    -- the old trust is gone, its session too: a full handshake that fails
    assert.equal(refused("a", url1, "moonwire test CA"), step("RECONNECT a"))
    assert.equal("OK b TLSv1.3 resumed=false", step("RECONNECT b"))
    assert.equal("OK c TLSv1.3 resumed=false", step("CONNECT c " .. url2))

    before = stat(trust).ino
    rewrite(trust, cert("ca.pem"))
    assert.equal(before, stat(trust).ino)
    assert.equal(refused("b", url2, "moonwire rogue CA"), step("RECONNECT b"))
    assert.equal("OK a TLSv1.3 resumed=false", step("RECONNECT a"))

    -- a missing or broken file fails the handshake, naming the file and the cause
    assert(os.remove(trust))
    assert.equal("ERROR a 4 tls " .. url1 .. ": cannot load CA certificates from " .. trust ..
      " (ssl.cafile): No such file or directory", step("RECONNECT a"))
    replace(trust, "not a certificate\n")
    assert.equal("ERROR a 4 tls " .. url1 .. ": cannot load CA certificates from " .. trust ..
      " (ssl.cafile): no PEM certificate in it", step("RECONNECT a"))
    replace(trust, "")
    assert.equal("ERROR a 4 tls " .. url1 .. ": cannot load CA certificates from " .. trust ..
      " (ssl.cafile): the file is empty", step("RECONNECT a"))
    -- the same bytes as before the breakage: the same context, whose session resumes
    replace(trust, cert("ca.pem"))
    assert.equal("OK a TLSv1.3 resumed=true", step("RECONNECT a"))
    finish()
    p1:wait_line("^TLS TLSv1%.3 reused=1 ")
  end)

  it("capath: a file rewritten in place (the directory unchanged), added or removed", function()
    local dir = H.tmpdir() .. "/cas"
    assert(uv.fs_mkdir(dir, tonumber("755", 8)))
    replace(dir .. "/one.pem", cert("ca.pem"))
    local p1, p2 = T.server("ws"), T.server("ws", "unknown")
    local url1, url2 = "wss://localhost:" .. p1.port .. "/", "wss://localhost:" .. p2.port .. "/"
    start(string.format("{capath = %q}", dir))

    assert.equal("OK a TLSv1.3 resumed=false", step("CONNECT a " .. url1))
    assert.equal(refused("b", url2, "moonwire rogue CA"), step("CONNECT b " .. url2))

    local d = stat(dir)
    rewrite(dir .. "/one.pem", cert("rogue-ca.pem"))
    local d2 = stat(dir)
    assert.same({ d.ino, d.mtime.sec, d.mtime.nsec }, { d2.ino, d2.mtime.sec, d2.mtime.nsec })
    assert.equal(refused("a", url1, "moonwire test CA"), step("RECONNECT a"))
    assert.equal("OK b TLSv1.3 resumed=false", step("RECONNECT b"))

    replace(dir .. "/two.pem", cert("ca.pem"))
    assert.equal("OK a TLSv1.3 resumed=false", step("RECONNECT a"))
    assert.equal("OK b TLSv1.3 resumed=false", step("RECONNECT b"))

    assert(os.remove(dir .. "/one.pem"))
    assert.equal(refused("b", url2, "moonwire rogue CA"), step("RECONNECT b"))
    assert(os.remove(dir .. "/two.pem"))
    assert.equal("ERROR a 4 tls " .. url1 .. ": cannot load CA certificates from " .. dir ..
      " (ssl.capath): no readable file in it", step("RECONNECT a"))
    assert(uv.fs_rmdir(dir))
    assert.equal("ERROR a 4 tls " .. url1 .. ": cannot load CA certificates from " .. dir ..
      " (ssl.capath): No such file or directory", step("RECONNECT a"))
    finish()
  end)

  it("local_cert/local_pk: a renewed client certificate is presented at the next handshake", function()
    local me_pem, me_key = H.tmpdir() .. "/me.pem", H.tmpdir() .. "/me.key"
    replace(me_pem, cert("client.pem"))
    replace(me_key, cert("client.key"))
    -- TLS 1.2: a server refusing a client certificate fails the handshake itself
    local pa = T.server("echo", nil, { "--client-ca", T.certs() .. "/ca.pem", "--max-tls", "1.2" })
    local pb = T.server("echo", nil, { "--client-ca", T.certs() .. "/rogue-ca.pem", "--max-tls", "1.2" })
    local urla, urlb = "text://localhost:" .. pa.port, "text://localhost:" .. pb.port
    start(string.format("{cafile = %q, local_cert = %q, local_pk = %q}", T.certs() .. "/ca.pem", me_pem, me_key))

    assert.equal("OK a TLSv1.2 resumed=false", step("CONNECT a " .. urla))
    pa:wait_line("^TLS TLSv1%.2 reused=0 .* peer=moonwire client$")
    assert.matches("^ERROR b 4 tls handshake with " .. urlb:gsub("%p", "%%%0") .. ": the server sent alert ",
      step("CONNECT b " .. urlb))
    assert.equal("OK a TLSv1.2 resumed=true", step("RECONNECT a"))

    replace(me_pem, cert("client2.pem"))
    replace(me_key, cert("client2.key"))
    -- a resumed session would carry the old identity: a full handshake, refused
    assert.matches("^ERROR a 4 tls handshake with " .. urla:gsub("%p", "%%%0") .. ": the server sent alert ",
      step("RECONNECT a"))
    assert.equal("OK b TLSv1.2 resumed=false", step("RECONNECT b"))
    pb:wait_line("^TLS TLSv1%.2 reused=0 .* peer=moonwire client 2$")

    -- half a renewal (the key still the old one) fails the handshake; wolfSSL 5.5's key
    -- check passes any EC key, so the server is the one that says so
    replace(me_key, cert("client.key"))
    assert.matches("^ERROR b 4 tls ", step("RECONNECT b"))
    assert(os.remove(me_pem))
    assert.equal("ERROR b 4 tls " .. urlb .. ": cannot load the client certificate " .. me_pem ..
      " (ssl.local_cert): No such file or directory", step("RECONNECT b"))
    finish()
  end)

  it("local_cert holding certificate and key: one rename renews both", function()
    local me = H.tmpdir() .. "/me.pem"
    replace(me, cert("client.pem") .. cert("client.key"))
    local pa = T.server("echo", nil, { "--client-ca", T.certs() .. "/ca.pem" })
    local pb = T.server("echo", nil, { "--client-ca", T.certs() .. "/rogue-ca.pem" })
    start(string.format("{cafile = %q, local_cert = %q}", T.certs() .. "/ca.pem", me))
    assert.equal("OK a TLSv1.3 resumed=false", step("CONNECT a text://localhost:" .. pa.port))
    pa:wait_line("^TLS TLSv1%.3 reused=0 .* peer=moonwire client$")
    replace(me, cert("client2.pem") .. cert("client2.key"))
    assert.equal("OK b TLSv1.3 resumed=false", step("CONNECT b text://localhost:" .. pb.port))
    pb:wait_line("^TLS TLSv1%.3 reused=0 .* peer=moonwire client 2$")
    finish()
  end)
end)
