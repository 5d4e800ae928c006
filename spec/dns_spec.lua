-- Issue 2, item 4: asynchronous name resolution with c-ares. Every query goes to
-- spec/servers/dns.py on 127.0.0.1 (MOONWIRE_DNS_SERVERS), never off the machine.
local H = require "spec.support.helper"

-- Connects to arg[1], sends one line, prints where it connected and the echo.
local CLIENT = [==[
local mw = require "moonwire"
local c = mw.AsyncTcpConnection.new(arg[1])
c.onConnect = function(conn)
  print("CONNECTED", conn:getRemoteIp(), conn:getRemotePort(), conn:isIpV4(), conn:isIpV6())
  conn:send("ping")
end
c.onMessage = function(conn, data) print("ECHO", data); conn:close() end
c.onError = function(_, code, msg) print("ERROR", code, msg) end
c.onClose = function() print("CLOSED") end
c:connect()
]==]

local function hosts_maps_localhost_to(addr)
  local f = io.open("/etc/hosts")
  if not f then return false end
  for line in f:lines() do
    line = line:gsub("#.*", "")
    local ip, names = line:match("^%s*(%S+)%s+(.*)$")
    if ip == addr then
      for name in names:gmatch("%S+") do if name == "localhost" then f:close(); return true end end
    end
  end
  f:close()
  return false
end

describe("name resolution (issue 2 item 4)", function()
  after_each(H.cleanup)

  it("localhost resolves from /etc/hosts, with no DNS query", function()
    local dns = H.dns_server()          -- answers NXDOMAIN to anything it is asked
    local srv = H.server("echo", { "--host", "127.0.0.1" })
    local res = H.run(CLIENT, { "text://localhost:" .. srv.port }, { env = dns.env })
    H.assert_exit(res, 0)
    assert.same({ "CONNECTED\t127.0.0.1\t" .. srv.port .. "\ttrue\tfalse", "ECHO\tping", "CLOSED" },
      res.lines)
    assert.same({}, dns:grep("^QUERY localhost"))
  end)

  it("localhost reaches a server on ::1 when /etc/hosts maps localhost to ::1 too", function()
    if not hosts_maps_localhost_to("::1") then
      pending("/etc/hosts on this machine has no '::1 localhost' line")
      return
    end
    local dns = H.dns_server()
    local srv = H.server("echo", { "--host", "::1" })
    local res = H.run(CLIENT, { "text://localhost:" .. srv.port }, { env = dns.env })
    H.assert_exit(res, 0)
    assert.same({ "CONNECTED\t::1\t" .. srv.port .. "\tfalse\ttrue", "ECHO\tping", "CLOSED" },
      res.lines)
  end)

  it("a name with an A and an AAAA record reaches a server listening on either family", function()
    -- Whatever order the resolver sorts the two addresses in, one of the two runs has to
    -- try the other address after a refused connect.
    local dns = H.dns_server({ "--record", "dual.test=::1,127.0.0.1" })
    for _, host in ipairs { "127.0.0.1", "::1" } do
      local srv = H.server("echo", { "--host", host })
      local res = H.run(CLIENT, { "text://dual.test:" .. srv.port }, { env = dns.env })
      H.assert_exit(res, 0)
      local fam = host == "::1" and "\tfalse\ttrue" or "\ttrue\tfalse"
      assert.same({ "CONNECTED\t" .. host .. "\t" .. srv.port .. fam, "ECHO\tping", "CLOSED" },
        res.lines)
    end
    dns:wait_line("^QUERY dual.test A")
  end)

  it("tries every address in turn: two A records, only one of them listening", function()
    local dns = H.dns_server({ "--record", "two.test=127.0.0.2,127.0.0.1" })
    for _, host in ipairs { "127.0.0.1", "127.0.0.2" } do
      local srv = H.server("echo", { "--host", host })
      local res = H.run(CLIENT, { "text://two.test:" .. srv.port }, { env = dns.env })
      H.assert_exit(res, 0)
      assert.same({ "CONNECTED\t" .. host .. "\t" .. srv.port .. "\ttrue\tfalse", "ECHO\tping",
        "CLOSED" }, res.lines)
    end
  end)

  it("resolves without blocking: a 0.1 s timer keeps its rate during a 1 s DNS answer", function()
    local dns = H.dns_server({ "--record", "slow.test=127.0.0.1", "--delay", 1.0 })
    local srv = H.server("echo")
    local res = H.run([==[
      local mw = require "moonwire"
      local ticks = 0
      local t0 = mw.now()
      local tid = mw.Timer.add(0.1, function() ticks = ticks + 1 end)
      local c = mw.AsyncTcpConnection.new(arg[1])
      c.onConnect = function(conn)
        print("CONNECTED", ticks, string.format("%.1f", mw.now() - t0))
        mw.Timer.del(tid)
        conn:close()
      end
      c.onError = function(_, code, msg) print("ERROR", code, msg); mw.Timer.del(tid) end
      c:connect()
    ]==], { "text://slow.test:" .. srv.port }, { env = dns.env })
    H.assert_exit(res, 0)
    local ticks, secs = res.lines[1]:match("^CONNECTED\t(%d+)\t([%d.]+)$")
    assert.is_not_nil(ticks, H.describe(res))
    ticks, secs = tonumber(ticks), tonumber(secs)
    assert.is_true(secs >= 0.9, "connected after " .. secs .. " s: was the answer delayed?")
    assert.is_true(ticks >= 8, "only " .. ticks .. " ticks while resolving")
    dns:wait_line("^ANSWER slow.test")
  end)

  it("a name that does not exist: onError DNS_FAIL naming the host, then onClose", function()
    local dns = H.dns_server()
    local res = H.run([==[
      local mw = require "moonwire"
      local c = mw.AsyncTcpConnection.new("tcp://nosuch.invalid:80")
      c.onConnect = function() print("CONNECTED?!") end
      c.onError = function(conn, code, msg) print("ERROR", code == mw.errors.DNS_FAIL, code, msg) end
      c.onClose = function(conn) print("CLOSED", conn:getStatus()) end
      c:connect()
      print("CONNECT RETURNED")
    ]==], {}, { env = dns.env })
    H.assert_exit(res, 0)
    assert.equal(3, #res.lines, H.describe(res))
    assert.equal("CONNECT RETURNED", res.lines[1])
    -- the message ends with the resolver's words (moonwire prefixes "connect <url>: ")
    assert.matches("^ERROR\ttrue\t3\t.*resolve nosuch%.invalid: host not found$", res.lines[2])
    assert.equal("CLOSED\tCLOSED", res.lines[3])
    dns:wait_line("^QUERY nosuch.invalid")
  end)

  it("a DNS server that is not there: onError DNS_FAIL naming the host, then onClose", function()
    local res = H.run([==[
      local mw = require "moonwire"
      local c = mw.AsyncTcpConnection.new("tcp://unreachable-dns.test:80")
      c.onError = function(conn, code, msg) print("ERROR", code, msg) end
      c.onClose = function() print("CLOSED") end
      c:connect()
    ]==], {}, { env = H.dead_dns_env(), timeout = 60 })
    H.assert_exit(res, 0)
    assert.equal(2, #res.lines, H.describe(res))
    assert.matches("^ERROR\t3\t.*resolve unreachable%-dns%.test: ", res.lines[1])
    assert.equal("CLOSED", res.lines[2])
  end)

  it("an IPv6 literal connects without a DNS query", function()
    local dns = H.dns_server()
    local srv = H.server("echo", { "--host", "::1" })
    local res = H.run(CLIENT, { "text://[::1]:" .. srv.port }, { env = dns.env })
    H.assert_exit(res, 0)
    assert.same({ "CONNECTED\t::1\t" .. srv.port .. "\tfalse\ttrue", "ECHO\tping", "CLOSED" },
      res.lines)
    assert.same({}, dns:grep("^QUERY"))
  end)

  it("an IPv4 literal connects without a DNS query", function()
    local dns = H.dns_server()
    local srv = H.server("echo")
    local res = H.run(CLIENT, { "text://127.0.0.1:" .. srv.port }, { env = dns.env })
    H.assert_exit(res, 0)
    assert.same({ "CONNECTED\t127.0.0.1\t" .. srv.port .. "\ttrue\tfalse", "ECHO\tping", "CLOSED" },
      res.lines)
    assert.same({}, dns:grep("^QUERY"))
  end)
end)
