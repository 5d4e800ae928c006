-- Issue 14: Happy Eyeballs (RFC 8305) and the source address. A name from the test DNS
-- server has a blackholed ::1 (spec/servers/blackhole.py: a listener whose full accept
-- queue drops SYNs) and a real server on 127.0.0.1, at one port: the connect starts on
-- ::1, starts 127.0.0.1 happyEyeballsDelay later while ::1 still hangs, and takes it.
-- bindto picks the source address (and port), its errors are clear.
local H = require "spec.support.helper"

local function ws_peer() return H.peer("ws_py_peer.py") end

-- Prints OPEN <remote> <local> <seconds from connect() to open>, ECHO, ERR, CLOSE.
local CLIENT = [[
local mw = require "moonwire"
local c = mw.AsyncTcpConnection.new(arg[1], load("return " .. (arg[2] or "{}"))())
c.connectTimeout = 10
local t0
c.onWebSocketConnect = function(c)
  print(("OPEN %s %s:%d %.3f"):format(c:getRemoteAddress(), c:getLocalIp(), c:getLocalPort(), mw.now() - t0))
  c:send("hi")
end
c.onMessage = function(c, m) print("ECHO " .. m) c:close() end
c.onError = function(c, code, msg) print("ERR " .. code .. " " .. msg) end
c.onClose = function() print("CLOSE") end
t0 = mw.now()
c:connect()
]]

describe("Happy Eyeballs", function()
  after_each(H.cleanup)

  local function setup_dual()
    local peer = ws_peer()
    local hole = H.spawn({ H.python, "-u", H.src .. "/spec/servers/blackhole.py", tostring(peer.port) },
      { name = "blackhole.py" })
    hole:wait_line("^READY$", 20)
    local dns = H.dns_server({ "--record", "dual.test=::1,127.0.0.1" })
    return peer, dns
  end

  it("a blackholed IPv6 address does not hold the IPv4 one for connectTimeout", function()
    local peer, dns = setup_dual()
    local url = ("ws://dual.test:%d/echo"):format(peer.port)
    local res = H.run(CLIENT, { url }, { env = dns.env, timeout = 20 })
    H.assert_exit(res, 0)
    local remote, t = H.grep(res.lines, "^OPEN")[1]:match("^OPEN (%S+) %S+ (%S+)$")
    assert.equal("127.0.0.1:" .. peer.port, remote)
    -- the second address started 0.25 s after the first, not after connectTimeout (10 s)
    assert.is_true(tonumber(t) >= 0.24 and tonumber(t) < 3, "opened after " .. t .. " s")
    assert.equal("ECHO hi", H.grep(res.lines, "^ECHO")[1])
    assert.same({}, H.grep(res.lines, "^ERR"))
  end)

  it("happyEyeballsDelay sets the stagger", function()
    local peer, dns = setup_dual()
    local url = ("ws://dual.test:%d/echo"):format(peer.port)
    local res = H.run(CLIENT, { url, "{ happyEyeballsDelay = 1.2 }" }, { env = dns.env, timeout = 20 })
    H.assert_exit(res, 0)
    local t = tonumber(H.grep(res.lines, "^OPEN")[1]:match(" (%S+)$"))
    assert.is_true(t >= 1.19 and t < 4, "opened after " .. t .. " s")
  end)

  it("a refused first address moves on at once", function()
    local peer = ws_peer()
    -- nothing listens on [::1]:port: refused at once, 127.0.0.1 follows without the stagger
    local dns = H.dns_server({ "--record", "dual.test=::1,127.0.0.1" })
    local res = H.run(CLIENT, { ("ws://dual.test:%d/echo"):format(peer.port), "{ happyEyeballsDelay = 2 }" },
      { env = dns.env, timeout = 20 })
    H.assert_exit(res, 0)
    local t = tonumber(H.grep(res.lines, "^OPEN")[1]:match(" (%S+)$"))
    assert.is_true(t < 1.5, "opened after " .. t .. " s")
  end)

  it("every address failing reports the last error", function()
    local dns = H.dns_server({ "--record", "dual.test=::1,127.0.0.1" })
    local res = H.run(CLIENT, { "ws://dual.test:1/" }, { env = dns.env })
    H.assert_exit(res, 0)
    assert.equal("ERR 1 connect ws://dual.test:1/: connection refused", H.grep(res.lines, "^ERR")[1])
  end)
end)

describe("bindto", function()
  after_each(H.cleanup)

  it("connects from the source address given, and port", function()
    local peer = ws_peer()
    local url = ("ws://127.0.0.1:%d/echo"):format(peer.port)
    local res = H.run(CLIENT, { url, "{ bindto = '127.0.0.2:0' }" })
    H.assert_exit(res, 0)
    assert.truthy(H.grep(res.lines, "^OPEN 127%.0%.0%.1:%d+ 127%.0%.0%.2:%d+ ")[1], H.describe(res))
    -- Workerman's spelling: context.socket.bindto
    res = H.run(CLIENT, { url, "{ context = { socket = { bindto = '127.0.0.3' } } }" })
    H.assert_exit(res, 0)
    assert.truthy(H.grep(res.lines, "^OPEN 127%.0%.0%.1:%d+ 127%.0%.0%.3:%d+ ")[1], H.describe(res))
    -- a fixed port
    local uv = require "luv"
    local s = uv.new_tcp()
    s:bind("127.0.0.4", 0)
    local port = s:getsockname().port
    s:close()
    res = H.run(CLIENT, { url, ("{ bindto = '127.0.0.4:%d' }"):format(port) })
    H.assert_exit(res, 0)
    assert.truthy(H.grep(res.lines, "^OPEN %S+ 127%.0%.0%.4:" .. port .. " ")[1], H.describe(res))
  end)

  it("three source addresses get past the ephemeral ports of one", function()
    -- a network namespace of the test's own (root, as CI runs) with 500 ephemeral ports
    local id = io.popen("id -u")
    local root = id:read("l") == "0"
    id:close()
    if not root then pending("needs root for a network namespace") return end
    local function peer()
      local p = H.spawn({ "unshare", "--net", "sh", "-c", 'ip link set lo up && echo "40000 40499" > '
        .. '/proc/sys/net/ipv4/ip_local_port_range && exec "$0" "$@"', H.python, "-u",
        H.src .. "/spec/servers/ws_py_peer.py", "--no-compression" }, { name = "ws_py_peer.py (netns)" })
      local _, port = p:wait_line("^PORT (%d+)$", 10)
      p.url = "ws://127.0.0.1:" .. port .. "/echo"
      p.prefix = { "nsenter", "--net=/proc/" .. p.pid .. "/ns/net" }
      return p
    end
    local client = H.src .. "/scripts/bench/clients/moonwire_sources.lua"
    local srv = peer()
    local res = H.run(nil, { srv.url, 1200, "127.0.0.2,127.0.0.3,127.0.0.4" },
      { path = client, prefix = srv.prefix, timeout = 60 })
    H.assert_exit(res, 0)
    assert.truthy(H.grep(res.lines, "^RESULT open=1200 failed=0 ")[1], H.describe(res))
    -- one source alone runs out: the error says so
    srv = peer()
    res = H.run(nil, { srv.url, 1200, "127.0.0.5" }, { path = client, prefix = srv.prefix, timeout = 60 })
    H.assert_exit(res, 0)
    local opened, failed, err = res.lines[1]:match("^RESULT open=(%d+) failed=(%d+) .* first_error=(.*)$")
    assert.is_true(tonumber(opened) < 500 and tonumber(failed) > 700, res.lines[1])
    assert.equal("connect " .. srv.url .. ": cannot assign requested address", err)
  end)

  it("clear errors: a name, a family that does not match, an address not here", function()
    local peer = ws_peer()
    local res = H.run([==[
local mw = require "moonwire"
local c = mw.AsyncTcpConnection.new("ws://127.0.0.1:1/")
for _, v in ipairs { "localhost", "127.0.0.1:70000", 5, "[::1" } do print(pcall(function() c.bindto = v end)) end
for _, v in ipairs { 0, 3 } do print(pcall(function() c.happyEyeballsDelay = v end)) end
]==])
    H.assert_exit(res, 0)
    local want = { "bindto: localhost is not an IP address (bindto takes an address, not a name)",
      "bindto: bad port (expected 0..65535)", "bindto must be a string (string expected, got number)",
      "bindto: unclosed [", "happyEyeballsDelay must be 0.01..2 seconds (RFC 8305: 0.25)",
      "happyEyeballsDelay must be 0.01..2 seconds (RFC 8305: 0.25)" }
    for i, w in ipairs(want) do
      assert.truthy(res.lines[i]:find("^false\t.*script.lua:%d+: " .. (w:gsub("%p", "%%%0")) .. "$"), res.lines[i])
    end
    local url = ("ws://127.0.0.1:%d/echo"):format(peer.port)
    res = H.run(CLIENT, { url, "{ bindto = '[::1]:0' }" })
    assert.equal(("ERR 1 connect %s: bindto is an IPv6 address, the target IPv4"):format(url), H.grep(res.lines, "^ERR")[1])
    res = H.run(CLIENT, { url, "{ bindto = '192.0.2.1' }" })
    assert.equal(("ERR 1 connect %s: bindto 192.0.2.1:0: cannot assign requested address"):format(url),
      H.grep(res.lines, "^ERR")[1])
  end)
end)
