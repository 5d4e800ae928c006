-- Issue 14, proxies: ws:// and wss:// through real proxies started here on loopback
-- (tinyproxy for HTTP CONNECT, with and without BasicAuth; microsocks for SOCKS5, with
-- and without a user name and password), the proxy environment variables and no_proxy,
-- TLS end to end to the target, and the fault cases against a scripted proxy
-- (spec/servers/proxy_fault.py): an error status, garbage, a stall, a close in the
-- middle, a SOCKS5 server that picks a method not offered or refuses the request.
-- Credentials never appear in a message.
local H = require "spec.support.helper"
local T = require "spec.support.tls"

local function have(bin) return os.execute("command -v " .. bin .. " >/dev/null 2>&1") end

-- tinyproxy on a free port; auth = "user password" or nil.
local function tinyproxy(auth)
  local port = T.free_port()
  local conf = H.tmpdir() .. "/tinyproxy-" .. port .. ".conf"
  local f = assert(io.open(conf, "w"))
  f:write(("Port %d\nListen 127.0.0.1\nTimeout 30\nMaxClients 64\nAllow 127.0.0.1\nLogLevel Critical\n"):format(port))
  if auth then f:write("BasicAuth " .. auth .. "\n") end
  f:close()
  local p = H.spawn({ "tinyproxy", "-d", "-c", conf }, { name = "tinyproxy" })
  assert(T.wait_port(port, 10), "tinyproxy did not start: " .. p:describe())
  p.port = port
  return p
end

local function microsocks(user, pass)
  local port = T.free_port()
  local argv = { "microsocks", "-i", "127.0.0.1", "-p", tostring(port) }
  if user then for _, a in ipairs { "-u", user, "-P", pass } do argv[#argv + 1] = a end end
  local p = H.spawn(argv, { name = "microsocks" })
  assert(T.wait_port(port, 10), "microsocks did not start: " .. p:describe())
  p.port = port
  return p
end

local function fault(...) return H.peer("proxy_fault.py", { ... }) end
local function ws_peer() return H.peer("ws_py_peer.py") end

-- Connects to arg[1] with the fields of arg[2] (a Lua table constructor), sends
-- "hello through <n>" on open and closes on the echo. Prints OPEN <remote address>,
-- ECHO <text>, ERR <code> <message>, CLOSE.
local CLIENT = [[
local mw = require "moonwire"
local c = mw.AsyncTcpConnection.new(arg[1], load("return " .. (arg[2] or "{}"))())
c.connectTimeout = tonumber(arg[3] or "10")
c.onWebSocketConnect = function(c) print("OPEN " .. c:getRemoteAddress()) c:send("hello through " .. arg[1]) end
c.onConnect = function(c) if c.protocol == "tcp" then print("OPEN " .. c:getRemoteAddress()) c:send("ping\n") end end
c.onMessage = function(c, m) print("ECHO " .. m) c:close() end
c.onError = function(c, code, msg) print("ERR " .. code .. " " .. msg) end
c.onClose = function() print("CLOSE") end
c:connect()
]]

local function run(url, fields, opts)
  opts = opts or {}
  local res = H.run(CLIENT, { url, fields or "{}", opts.timeout }, { env = opts.env, timeout = 20 })
  H.assert_exit(res, 0)
  return res
end

local function echoed(res, url)
  assert.is_truthy(H.grep(res.lines, "^ECHO hello through ")[1], H.describe(res))
  assert.equal("ECHO hello through " .. url, H.grep(res.lines, "^ECHO")[1])
  assert.same({}, H.grep(res.lines, "^ERR"))
end

local function err_of(res)
  local e = H.grep(res.lines, "^ERR")
  assert.equal(1, #e, H.describe(res))
  assert.equal("CLOSE", res.lines[#res.lines])
  return e[1]
end

-- An environment with no proxy variable but those given.
local function env(t)
  local e = { http_proxy = false, https_proxy = false, HTTPS_PROXY = false, all_proxy = false,
    ALL_PROXY = false, no_proxy = false, NO_PROXY = false, HTTP_PROXY = false }
  for k, v in pairs(t or {}) do e[k] = v end
  return e
end

describe("proxies", function()
  local peer
  setup(function()
    assert(have("tinyproxy"), "tinyproxy is not installed (scripts/bootstrap.sh installs it)")
    assert(have("microsocks"), "microsocks is not installed (scripts/bootstrap.sh installs it)")
  end)
  before_each(function() peer = ws_peer() end)
  after_each(H.cleanup)
  teardown(T.remove_certs)

  local function target() return "ws://127.0.0.1:" .. peer.port .. "/echo" end

  describe("HTTP CONNECT through tinyproxy", function()
    it("carries ws:// to the target, the Host header the target's", function()
      local px = tinyproxy()
      local res = run(target(), ("{ proxyHttp = '127.0.0.1:%d' }"):format(px.port), { env = env() })
      echoed(res, target())
      -- the socket's peer is the proxy; the handshake went to the target
      assert.equal("OPEN 127.0.0.1:" .. px.port, H.grep(res.lines, "^OPEN")[1])
      local _, host = peer:wait_line("^CONNECT /echo .*Host=(%S+)", 5)
      assert.equal("127.0.0.1:" .. peer.port, host)
    end)

    it("the same through proxy = 'http://...' and new()'s options", function()
      local px = tinyproxy()
      echoed(run(target(), ("{ proxy = 'http://127.0.0.1:%d' }"):format(px.port), { env = env() }), target())
    end)

    it("authenticates with the URL's user info (Basic) or proxyAuthorization", function()
      local px = tinyproxy("bob s3cret")
      echoed(run(target(), ("{ proxyHttp = 'http://bob:s3cret@127.0.0.1:%d' }"):format(px.port), { env = env() }), target())
      local raw = "Basic " .. "Ym9iOnMzY3JldA=="   -- bob:s3cret
      echoed(run(target(), ("{ proxyHttp = '127.0.0.1:%d', proxyAuthorization = %q }"):format(px.port, raw),
        { env = env() }), target())
    end)

    it("a 407 names the proxy, the target and the status, never the credentials", function()
      local px = tinyproxy("bob s3cret")
      local e = err_of(run(target(), ("{ proxyHttp = '127.0.0.1:%d' }"):format(px.port), { env = env() }))
      assert.equal(("ERR 1 connect %s via http proxy 127.0.0.1:%d: proxy answered 407 Proxy Authentication Required")
        :format(target(), px.port), e)
      local res = run(target(), ("{ proxyHttp = 'http://bob:wrong@127.0.0.1:%d' }"):format(px.port), { env = env() })
      local e2 = err_of(res)
      assert.truthy(e2:find("proxy answered 40[17]"), e2)
      assert.falsy(res.stdout:find("wrong", 1, true))
      assert.falsy(res.stderr:find("wrong", 1, true))
    end)

    it("a proxy that is not there: connection refused, naming the proxy", function()
      local port = T.free_port()
      local e = err_of(run(target(), ("{ proxyHttp = '127.0.0.1:%d' }"):format(port), { env = env() }))
      assert.equal(("ERR 1 connect %s via http proxy 127.0.0.1:%d: connection refused"):format(target(), port), e)
    end)
  end)

  describe("SOCKS5 through microsocks", function()
    it("socks5h:// (the proxy resolves the name) and socks5:// (resolved here)", function()
      local px = microsocks()
      local url = "ws://localhost:" .. peer.port .. "/echo"
      local res = run(url, ("{ proxySocks5 = '127.0.0.1:%d' }"):format(px.port), { env = env() })
      echoed(res, url)
      assert.equal("OPEN 127.0.0.1:" .. px.port, H.grep(res.lines, "^OPEN")[1])
      echoed(run(target(), ("{ proxy = 'socks5://127.0.0.1:%d' }"):format(px.port), { env = env() }), target())
    end)

    it("user name and password (RFC 1929), in the URL or in Workerman's fields", function()
      local px = microsocks("bob", "s3cret")
      echoed(run(target(), ("{ proxySocks5 = 'socks5h://bob:s3cret@127.0.0.1:%d' }"):format(px.port), { env = env() }), target())
      echoed(run(target(), ("{ proxySocks5 = '127.0.0.1:%d', proxySocks5Username = 'bob', proxySocks5Password = 's3cret' }")
        :format(px.port), { env = env() }), target())
      local res = run(target(), ("{ proxySocks5 = 'socks5://bob:wrong@127.0.0.1:%d' }"):format(px.port), { env = env() })
      assert.equal(("ERR 1 connect %s via socks5 proxy 127.0.0.1:%d: proxy rejected the user name and password")
        :format(target(), px.port), err_of(res))
      assert.falsy(res.stdout:find("wrong", 1, true))
      local e = err_of(run(target(), ("{ proxySocks5 = '127.0.0.1:%d' }"):format(px.port), { env = env() }))
      assert.truthy(e:find("proxy accepts none of the offered authentication methods", 1, true), e)
    end)

    it("a target that refuses: the SOCKS5 reply in words", function()
      local px = microsocks()
      local port = T.free_port()
      local url = "ws://127.0.0.1:" .. port .. "/"
      local e = err_of(run(url, ("{ proxySocks5 = '127.0.0.1:%d' }"):format(px.port), { env = env() }))
      assert.equal(("ERR 1 connect %s via socks5h proxy 127.0.0.1:%d: connection refused by destination host (SOCKS5 reply 5)")
        :format(url, px.port), e)
    end)
  end)

  describe("TLS end to end through the tunnel", function()
    local function wss(cert)
      return T.server("ws", cert)
    end
    it("wss:// through each proxy: SNI and verification are the target's", function()
      local tls = wss("server")
      local url = "wss://localhost:" .. tls.port .. "/echo"
      local ssl = ("ssl = { cafile = %q }"):format(T.certs() .. "/ca.pem")
      local http, socks = tinyproxy(), microsocks()
      echoed(run(url, ("{ proxyHttp = '127.0.0.1:%d', %s }"):format(http.port, ssl), { env = env() }), url)
      assert.truthy(tls:wait_line("^TLS .* sni=localhost", 5))
      echoed(run(url, ("{ proxySocks5 = '127.0.0.1:%d', %s }"):format(socks.port, ssl), { env = env() }), url)
      assert.truthy(tls:wait_line("^TLS .* sni=localhost", 5))
    end)

    it("a certificate for another name fails against the target's name, not the proxy's", function()
      local tls = wss("other")
      local url = "wss://localhost:" .. tls.port .. "/echo"
      local http = tinyproxy()
      local e = err_of(run(url, ("{ proxyHttp = '127.0.0.1:%d', ssl = { cafile = %q } }")
        :format(http.port, T.certs() .. "/ca.pem"), { env = env() }))
      assert.truthy(e:find("^ERR 4 "), e)
      assert.truthy(e:find("localhost", 1, true), e)
      -- peer_name is the target's too
      echoed(run(url, ("{ proxyHttp = '127.0.0.1:%d', ssl = { cafile = %q, peer_name = 'other.test' } }")
        :format(http.port, T.certs() .. "/ca.pem"), { env = env() }), url)
    end)
  end)

  describe("the environment", function()
    it("http_proxy for ws://, https_proxy for wss://, all_proxy otherwise", function()
      local http = tinyproxy()
      local res = run(target(), nil, { env = env { http_proxy = "http://127.0.0.1:" .. http.port } })
      echoed(res, target())
      assert.equal("OPEN 127.0.0.1:" .. http.port, H.grep(res.lines, "^OPEN")[1])
      -- the upper-case name too, but not in a CGI program
      res = run(target(), nil, { env = env { HTTP_PROXY = "http://127.0.0.1:" .. http.port } })
      assert.equal("OPEN 127.0.0.1:" .. http.port, H.grep(res.lines, "^OPEN")[1])
      res = run(target(), nil, { env = env { HTTP_PROXY = "http://127.0.0.1:1", REQUEST_METHOD = "GET" } })
      assert.equal("OPEN 127.0.0.1:" .. peer.port, H.grep(res.lines, "^OPEN")[1])
      -- https_proxy is not for ws://
      res = run(target(), nil, { env = env { https_proxy = "http://127.0.0.1:1" } })
      assert.equal("OPEN 127.0.0.1:" .. peer.port, H.grep(res.lines, "^OPEN")[1])
      local socks = microsocks()
      res = run(target(), nil, { env = env { ALL_PROXY = "socks5h://127.0.0.1:" .. socks.port } })
      assert.equal("OPEN 127.0.0.1:" .. socks.port, H.grep(res.lines, "^OPEN")[1])
      echoed(res, target())
      local tls = T.server("ws", "server")
      local url = "wss://localhost:" .. tls.port .. "/echo"
      res = run(url, ("{ ssl = { cafile = %q } }"):format(T.certs() .. "/ca.pem"),
        { env = env { https_proxy = "127.0.0.1:" .. http.port, http_proxy = "http://127.0.0.1:1" } })
      echoed(res, url)
      assert.equal("OPEN 127.0.0.1:" .. http.port, H.grep(res.lines, "^OPEN")[1])
    end)

    it("no_proxy exempts names, suffixes, addresses, CIDR ranges, ports and *", function()
      local dead = "http://127.0.0.1:" .. T.free_port()
      for _, np in ipairs { "127.0.0.1", "10.0.0.0/8,127.0.0.0/8", "*", "127.0.0.1:" .. peer.port, "example.test, 127.0.0.1" } do
        local res = run(target(), nil, { env = env { http_proxy = dead, no_proxy = np } })
        echoed(res, target())
        assert.equal("OPEN 127.0.0.1:" .. peer.port, H.grep(res.lines, "^OPEN")[1])
      end
      local url = "ws://localhost:" .. peer.port .. "/echo"
      echoed(run(url, nil, { env = env { http_proxy = dead, NO_PROXY = ".localhost" } }), url)
      -- not exempt: another port, another range
      for _, np in ipairs { "127.0.0.1:1", "10.0.0.0/8", "example.test" } do
        local e = err_of(run(target(), nil, { env = env { http_proxy = dead, no_proxy = np } }))
        assert.truthy(e:find("via http proxy", 1, true), e)
      end
    end)

    it("proxy = false ignores the environment; an explicit proxy wins over it", function()
      local dead = "http://127.0.0.1:" .. T.free_port()
      local res = run(target(), "{ proxy = false }", { env = env { http_proxy = dead, all_proxy = dead } })
      echoed(res, target())
      local http = tinyproxy()
      res = run(target(), ("{ proxyHttp = '127.0.0.1:%d' }"):format(http.port), { env = env { http_proxy = dead } })
      assert.equal("OPEN 127.0.0.1:" .. http.port, H.grep(res.lines, "^OPEN")[1])
    end)

    it("a bad value names the variable", function()
      local e = err_of(run(target(), nil, { env = env { http_proxy = "ftp://127.0.0.1:21" } }))
      assert.equal("ERR 1 connect " .. target() .. ": bad proxy setting in http_proxy: unknown proxy scheme "
        .. "(expected http://, socks5:// or socks5h://)", e)
    end)
  end)

  describe("faults", function()
    local function via(px, kind) return ("connect %s via %s proxy 127.0.0.1:%d: "):format(target(), kind, px.port) end
    it("an error status, garbage, a close in the middle", function()
      local px = fault("http-status", "502", "Bad Gateway")
      assert.equal("ERR 1 " .. via(px, "http") .. "proxy answered 502 Bad Gateway",
        err_of(run(target(), ("{ proxyHttp = '127.0.0.1:%d' }"):format(px.port), { env = env() })))
      local _, line = px:wait_line("^REQ (.*)$", 5)
      assert.equal("CONNECT 127.0.0.1:" .. peer.port .. " HTTP/1.1", line)
      local _, hosthdr = px:wait_line("^HDR Host: (.*)$", 5)
      assert.equal("127.0.0.1:" .. peer.port, hosthdr)
      px = fault("garbage")
      local e = err_of(run(target(), ("{ proxyHttp = '127.0.0.1:%d' }"):format(px.port), { env = env() }))
      assert.truthy(e:find(via(px, "http") .. "proxy answer is not HTTP", 1, true), e)
      px = fault("close")
      assert.equal("ERR 1 " .. via(px, "http") .. "proxy closed the connection while the answer to CONNECT was expected",
        err_of(run(target(), ("{ proxyHttp = '127.0.0.1:%d' }"):format(px.port), { env = env() })))
    end)

    it("a proxy that stalls: TIMEOUT in the proxy stage, bounded by connectTimeout", function()
      local px = fault("stall")
      local t0 = H.now()
      local e = err_of(run(target(), ("{ proxyHttp = '127.0.0.1:%d' }"):format(px.port), { env = env(), timeout = "0.5" }))
      assert.equal("ERR 8 " .. via(px, "http") .. "proxy handshake timed out after 0.5s while the answer to CONNECT was expected", e)
      assert.is_true(H.now() - t0 < 5)
      px = fault("socks-stall")
      e = err_of(run(target(), ("{ proxySocks5 = '127.0.0.1:%d' }"):format(px.port), { env = env(), timeout = "0.5" }))
      assert.equal("ERR 8 " .. via(px, "socks5h") .. "proxy handshake timed out after 0.5s while the SOCKS5 reply was expected", e)
    end)

    it("SOCKS5: a method not offered, a refusal by ruleset, what was sent", function()
      local px = fault("socks-method", "02")
      assert.equal("ERR 1 " .. via(px, "socks5h") .. "proxy chose authentication method 2, which was not offered",
        err_of(run(target(), ("{ proxySocks5 = '127.0.0.1:%d' }"):format(px.port), { env = env() })))
      px = fault("socks-reply", "2")
      assert.equal("ERR 1 " .. via(px, "socks5h") .. "connection not allowed by ruleset (SOCKS5 reply 2)",
        err_of(run(target(), ("{ proxySocks5 = '127.0.0.1:%d' }"):format(px.port), { env = env() })))
      local _, greet = px:wait_line("^SOCKS (%x+)$", 5)
      assert.equal("050100", greet)
      local _, req = px:wait_line("^SOCKS (%x+)$", 5)
      -- CONNECT to the address 127.0.0.1 and the peer's port
      assert.equal(("050100017f000001%04x"):format(peer.port), req)
    end)

    it("a server that speaks first: its bytes right after the proxy's answer reach the script", function()
      local px = fault("http-ok-data")
      local res = run("tcp://127.0.0.1:9/", ("{ proxyHttp = '127.0.0.1:%d' }"):format(px.port), { env = env() })
      assert.equal("ECHO hello\n", H.grep(res.lines, "^ECHO")[1] .. "\n")
    end)
  end)

  describe("reload and reconnect", function()
    it("a reload keeps the proxied connection; a reconnect goes through the proxy again", function()
      local R = require "spec.support.reload"
      local counter = R.ws_counter()
      local px = tinyproxy()
      local function bot(v)
        return ([[
local mw = require "moonwire"
local c = mw.AsyncTcpConnection.new("%s/echo", { name = "bot", proxyHttp = "127.0.0.1:%d" })
c.onWebSocketConnect = function(c) print("%s open " .. c:getRemoteAddress()) end
c.onMessage = function(c, m)
  print("%s got " .. m)
  if m == "again" then c:reConnect(0) end
  if m == "bye" then c:close() end
end
c.onClose = function() print("%s close") end
c:connect()
]]):format(counter.url, px.port, v, v, v)
      end
      local p = R.start(bot("v1"))
      p:wait_line("^v1 open 127.0.0.1:" .. px.port .. "$")
      counter:wait_line("^CONNECT 1 /echo$")
      R.replace(p.path, bot("v2"))
      p:kill("sighup")
      R.wait_reloaded(p)
      counter:send("SEND 1 ping\n")
      p:wait_line("^v2 got ping$")       -- the same socket, the new code
      counter:send("SEND 1 again\n")
      p:wait_line("^v2 open 127.0.0.1:" .. px.port .. "$")
      counter:wait_line("^CONNECT 2 /echo$")
      counter:send("SEND 2 bye\n")
      p:wait_line("^v2 close$")
      assert.equal(0, #p:grep("^v1 close"))
      assert.equal(0, #p:grep("^v2 open 127.0.0.1:" .. counter.port))
      R.stop(p)
    end)
  end)

  describe("examples/proxy_client.lua", function()
    it("echoes through the proxy given, and through the environment's", function()
      local px = tinyproxy()
      local res = H.run(nil, { target(), "http://127.0.0.1:" .. px.port },
        { path = H.src .. "/examples/proxy_client.lua", env = env() })
      H.assert_exit(res, 0)
      assert.same({ "connected to " .. target() .. " through 127.0.0.1:" .. px.port,
        "echo: hello through the proxy", "closed" }, res.lines)
      res = H.run(nil, { target() }, { path = H.src .. "/examples/proxy_client.lua",
        env = env { http_proxy = "127.0.0.1:" .. px.port } })
      H.assert_exit(res, 0)
      assert.equal("connected to " .. target() .. " through 127.0.0.1:" .. px.port, res.lines[1])
    end)
  end)

  describe("options", function()
    it("bad values fail at the assignment, naming the field", function()
      local res = H.run([==[
local mw = require "moonwire"
local c = mw.AsyncTcpConnection.new("ws://127.0.0.1:1/")
for _, t in ipairs {
  { "proxyHttp", "127.0.0.1" }, { "proxyHttp", "socks5://127.0.0.1:1080" }, { "proxySocks5", "http://h:1" },
  { "proxy", "ftp://h:1" }, { "proxy", 3128 }, { "proxyAuthorization", "Basic x\r\nX: y" },
  { "proxySocks5Username", ("u"):rep(256) }, { "proxy", "http://h:99999" }, { "proxy", "http://h:1/path" },
} do
  local ok, err = pcall(function() c[t[1]] = t[2] end)
  print(ok, err)
end
c.proxy = "socks5h://u:p@[::1]:1080"
print(c.proxy)
]==])
      H.assert_exit(res, 0)
      local want = {
        "proxyHttp: the proxy address needs a port (host:port)",
        "proxyHttp takes an http:// proxy (use proxySocks5 or proxy for SOCKS)",
        "proxySocks5 takes a socks5:// or socks5h:// proxy (use proxyHttp or proxy for HTTP)",
        "proxy: unknown proxy scheme (expected http://, socks5:// or socks5h://)",
        "proxy must be a string or false, got number",
        "proxyAuthorization must not contain CR or LF",
        "proxySocks5Username is longer than 255 bytes",
        "proxy: bad port in the proxy address (expected 1..65535)",
        "proxy: a proxy address has no path",
      }
      for i, w in ipairs(want) do
        assert.truthy(res.lines[i]:find("^false\t.*script.lua:%d+: " .. (w:gsub("%p", "%%%0")) .. "$"), res.lines[i])
      end
      assert.equal("socks5h://u:p@[::1]:1080", res.lines[#want + 1])
    end)
  end)
end)
