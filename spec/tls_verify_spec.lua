-- Issue 11 (3, 4): what a TLS handshake accepts as the server's identity. An IP literal
-- is matched only by an iPAddress subjectAltName, compared as an address (any textual
-- form), never by a dNSName, a wildcard or the CN; the CN counts only for a DNS name of a
-- certificate with no subjectAltName. A saved session is resumed only under the options
-- it was verified under: loosened options then tightened ones (by reConnect with a new
-- context, or by a hot reload) never resume into an identity the strict options refuse.
-- Real TLS servers (spec/servers/tls_peer.py) on loopback, certificates made at test time
-- (spec/servers/tls_certs.sh).
local H = require "spec.support.helper"
local R = require "spec.support.reload"
local T = require "spec.support.tls"

-- arg: url, a Lua list of ssl option tables, one per connection. Connection n uses
-- options n; after its echo, the next options go into conn.context and reConnect(0)
-- follows (text:// gets transport "ssl"). Prints "UP n resumed=<bool>" per handshake
-- (ws: after the upgrade) and "ERROR n code msg".
local STEPS = [==[
local mw = require "moonwire"
local url, steps = arg[1], load("return " .. arg[2])()
local c = mw.AsyncTcpConnection.new(url, { ssl = steps[1] })
local ws = url:match("^wss:") ~= nil
if not ws then c.transport = "ssl" end
local n = 1
local function up(conn)
  print("UP " .. n .. " resumed=" .. tostring(conn:tlsInfo().resumed))
  conn:send("hello " .. n)   -- text:// send adds the newline
end
if ws then c.onWebSocketConnect = up else c.onConnect = up end
c.onMessage = function(conn)
  n = n + 1
  if steps[n] then
    conn.context = { ssl = steps[n] }
    conn:reConnect(0)
  else
    conn:close()
  end
end
c.onError = function(_, code, msg) print("ERROR " .. n .. " " .. code .. " " .. msg) end
c:connect()
]==]

local function ca() return T.certs() .. "/ca.pem" end

-- An ssl option table as a Lua literal: cafile = the test CA, then extra.
local function opts(extra)
  return string.format("{cafile = %q%s}", ca(), extra and (", " .. extra) or "")
end

local function steps(url, list)
  local res = H.run(STEPS, { url, "{" .. table.concat(list, ", ") .. "}" })
  H.assert_exit(res, 0)
  return res
end

-- One connection with one set of options: its lines.
local function once(url, extra) return steps(url, { opts(extra) }).lines end

local IP_ONLY = " (an IP address matches only an IP address subjectAltName)"

describe("TLS identity (issue 11)", function()
  after_each(H.cleanup)
  teardown(T.remove_certs)

  describe("an IP literal", function()
    it("wss://[::1] matches the SAN IP:::1, in any textual form of the address", function()
      local srv = T.server("ws", "ip6", { "--host", "::1" })
      for _, host in ipairs { "[::1]", "[0:0:0:0:0:0:0:1]", "[::0:1]" } do
        local url = "wss://" .. host .. ":" .. srv.port .. "/"
        local res = steps(url, { opts() })
        assert.same({ "UP 1 resumed=false" }, res.lines, H.describe(res))
      end
      srv:wait_line("^TLS TLSv1%.3 reused=0 sni=%- ")
      -- peer_name as an address is an IP reference too
      local v4 = T.server("ws", "ip6")
      local url = "wss://127.0.0.1:" .. v4.port .. "/"
      assert.same({ "UP 1 resumed=false" }, once(url, 'peer_name = "0:0:0:0:0:0:0:1"'))
      assert.same({ "UP 1 resumed=false" }, once(url, 'peer_name = "[::1]"'))
      assert.same({ "ERROR 1 4 tls handshake with " .. url .. ": hostname mismatch: certificate is for " ..
        "IP address ::1, not IP address 127.0.0.1" .. IP_ONLY }, once(url))
    end)

    it("wss://127.0.0.1 refuses a dNSName 127.0.0.1, a wildcard *.0.0.1 and a CN 127.0.0.1", function()
      for cert, names in pairs { dnsip = "DNS name 127.0.0.1", wildip = "DNS name *.0.0.1",
                                 cnip = "common name 127.0.0.1" } do
        local srv = T.server("ws", cert)
        local url = "wss://127.0.0.1:" .. srv.port .. "/"
        local want = "ERROR 1 4 tls handshake with " .. url .. ": hostname mismatch: certificate is for " ..
          names .. ", not IP address 127.0.0.1" .. IP_ONLY
        assert.same({ want }, once(url), cert)
        -- verify_peer = false leaves the name check to after the handshake: the same rule
        assert.same({ want }, once(url, "verify_peer = false"), cert)
      end
    end)
  end)

  describe("a DNS name", function()
    it("matches the CN of a certificate without subjectAltName, not of one with any", function()
      local nosan = T.server("ws", "cnhost") -- CN=localhost, no SAN
      assert.same({ "UP 1 resumed=false" }, once("wss://localhost:" .. nosan.port .. "/"))
      local url = "wss://127.0.0.1:" .. nosan.port .. "/"
      assert.same({ "ERROR 1 4 tls handshake with " .. url .. ": hostname mismatch: certificate is for " ..
        "localhost, not other.test" }, once(url, 'peer_name = "other.test"'))
      local ipcn = T.server("ws", "ipcn") -- CN=localhost, SAN IP:127.0.0.2
      url = "wss://localhost:" .. ipcn.port .. "/"
      assert.same({ "ERROR 1 4 tls handshake with " .. url ..
        ": hostname mismatch: certificate is for 127.0.0.2, not localhost" }, once(url))
    end)

    it("with a trailing dot (peer_name = \"localhost.\") is matched and sent in SNI without it", function()
      local srv = T.server("ws")
      assert.same({ "UP 1 resumed=false" }, once("wss://127.0.0.1:" .. srv.port .. "/", 'peer_name = "localhost."'))
      srv:wait_line("^TLS TLSv1%.3 reused=0 sni=localhost alpn")
    end)
  end)

  describe("session resumption follows the options", function()
    it("reConnect: verify_peer_name false, again (resumed), then true: a full handshake, refused", function()
      for _, tls12 in ipairs { false, true } do
        local srv = tls12 and T.server("echo", "other", { "--max-tls", "1.2" }) or T.server("ws", "other")
        local url = (tls12 and "text://localhost:" or "wss://localhost:") .. srv.port .. (tls12 and "" or "/")
        local loose = opts("verify_peer_name = false")
        local res = steps(url, { loose, loose, opts() })
        assert.same({ "UP 1 resumed=false", "UP 2 resumed=true",
          "ERROR 3 4 tls handshake with " .. url .. ": hostname mismatch: certificate is for other.test, not localhost" },
          res.lines, H.describe(res))
        srv:wait_line("reused=1")
        -- a fresh connection with the strict options says the same
        res = steps(url, { opts() })
        assert.same({ "ERROR 1 4 tls handshake with " .. url ..
          ": hostname mismatch: certificate is for other.test, not localhost" }, res.lines)
      end
    end)

    it("reConnect: allow_self_signed true, again (resumed), then false: refused", function()
      local srv = T.server("ws", "self")
      local url = "wss://localhost:" .. srv.port .. "/"
      local res = steps(url, { opts("allow_self_signed = true"), opts("allow_self_signed = true"), opts() })
      assert.same({ "UP 1 resumed=false", "UP 2 resumed=true", "ERROR 3 4 tls handshake with " .. url ..
        ": certificate verify failed for localhost: self-signed certificate" }, res.lines, H.describe(res))
    end)

    it("a hot reload that tightens the options: the next reConnect is refused, not resumed", function()
      local srv = T.server("ws", "other")
      local url = "wss://localhost:" .. srv.port .. "/"
      -- onWorkerReload sends "reconnect"; its echo makes the bot reConnect()
      local function bot(v, extra)
        return ([[
local mw = require "moonwire"
local V = %q
local conn = mw.AsyncTcpConnection.new(%q, { name = "feed", ssl = %s })
conn.onWebSocketConnect = function(c) print(V .. " up resumed=" .. tostring(c:tlsInfo().resumed)) end
conn.onMessage = function(c, data) if data == "reconnect" then c:reConnect(0) end end
conn.onError = function(_, code, msg) print(V .. " error " .. code .. " " .. msg) end
conn:connect()
local w = mw.Worker.new()
w.onWorkerReload = function() if conn:getStatus() == "ESTABLISHED" then conn:send("reconnect") end end
mw.Worker.runAll()
]]):format(v, url, opts(extra))
      end
      local p = R.start(bot("v1", "verify_peer_name = false"))
      p:wait_line("^v1 up resumed=false$")
      -- the same options: the session is resumed
      R.replace(p.path, bot("v2", "verify_peer_name = false"))
      p:kill("sighup")
      R.wait_reloaded(p)
      p:wait_line("^v2 up resumed=true$")
      -- strict options: a full handshake, which the name check refuses
      R.replace(p.path, bot("v3"))
      p:kill("sighup")
      R.wait_reloaded(p)
      p:wait_line("^v3 error 4 tls handshake with " .. url:gsub("%p", "%%%0") ..
        ": hostname mismatch: certificate is for other%.test, not localhost$")
      assert.same({}, p:grep("^v3 up"))
      R.stop(p)
    end)
  end)
end)
