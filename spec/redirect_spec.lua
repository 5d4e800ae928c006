-- Issue 14: followRedirects. The handshake follows up to N answers 301/302/303/307/308
-- to their Location (absolute, scheme-relative, absolute-path and relative), ws -> wss
-- allowed and wss -> ws refused, messages sent before the handshake reach the final
-- server, the chain named when it ends badly, and the next connect starts from the URL
-- the script gave. Servers: spec/servers/flap.py (redirect steps, TLS with --tls) and
-- the Python websockets echo peer.
local H = require "spec.support.helper"
local T = require "spec.support.tls"

local function flap(...)
  local p = H.peer("flap.py", { ... })
  p.base = "127.0.0.1:" .. p.port
  return p
end

local function echo_peer() return H.peer("ws_py_peer.py") end

-- arg[1] URL, arg[2] fields; prints OPEN <url>, MSG, ERR, CLOSE; sends "early" before
-- connect(); with arg[3] = "again", connects once more after the first close.
local CLIENT = [[
local mw = require "moonwire"
local c = mw.AsyncTcpConnection.new(arg[1], load("return " .. (arg[2] or "{}"))())
local again = arg[3] == "again"
c.onWebSocketConnect = function(c) print("OPEN " .. c.url) end
c.onMessage = function(c, m) print("MSG " .. m) c:close() end
c.onError = function(c, code, msg) print("ERR " .. code .. " " .. msg) end
c.onClose = function(c) print("CLOSE") if again then again = false print("URL " .. c.url) c:connect() end end
c:send("early")
c:connect()
]]

local function esc(s) return (s:gsub("%p", "%%%0")) end

describe("followRedirects", function()
  after_each(H.cleanup)
  teardown(T.remove_certs)

  it("is off by default: a 302 is the error it always was", function()
    local a = flap("redirect:302:/next")
    local res = H.run(CLIENT, { "ws://" .. a.base .. "/start" })
    H.assert_exit(res, 0)
    assert.equal("ERR 5 websocket handshake with ws://" .. a.base .. "/start failed: HTTP/1.1 302 Moved",
      H.grep(res.lines, "^ERR")[1])
  end)

  it("follows absolute paths, relative paths and absolute URLs, keeping what was sent early", function()
    local b = echo_peer()
    local a = flap("redirect:301:/dir/page?x=1", "redirect:308:next", "redirect:307:http://127.0.0.1:" .. b.port .. "/echo",
      "redirect:303:/dir/page")
    local res = H.run(CLIENT, { "ws://" .. a.base .. "/start", "{ followRedirects = 3 }", "again" })
    H.assert_exit(res, 0)
    assert.equal("OPEN ws://" .. a.base .. "/start", res.lines[1])
    assert.equal("MSG early", res.lines[2])     -- sent before connect(), delivered to the last hop
    local paths = {}
    for _, l in ipairs(a.lines) do
      local p = l:match("^CONNECT %d+ (%S+)$")
      if p then paths[#paths + 1] = p end
    end
    -- the second connect starts from the URL given, not the last hop
    assert.same({ "/start", "/dir/page?x=1", "/dir/next", "/start", "/dir/page" }, paths)
    -- conn.url is the URL the script gave (where the next connect starts), not the hop
    assert.equal("URL ws://" .. a.base .. "/start", H.grep(res.lines, "^URL")[1])
    -- no onClose between the hops: one for the first connection, one for the second
    assert.equal(2, #H.grep(res.lines, "^CLOSE$"))
  end)

  it("too many, no Location, another scheme: the error names the chain", function()
    local a = flap("redirect:302:/b", "redirect:302:/c")
    local res = H.run(CLIENT, { "ws://" .. a.base .. "/a", "{ followRedirects = 1 }" })
    H.assert_exit(res, 0)
    assert.equal(("ERR 5 websocket handshake with ws://%s/b failed: answer 302 to ws://%s/c: too many redirects "
      .. "(followRedirects = 1) (redirects: ws://%s/a -> ws://%s/b)"):format(a.base, a.base, a.base, a.base),
      H.grep(res.lines, "^ERR")[1])
    a = flap("status:302", "redirect:301:ftp://x/")
    res = H.run(CLIENT, { "ws://" .. a.base .. "/a", "{ followRedirects = 2 }" })
    assert.equal(("ERR 5 websocket handshake with ws://%s/a failed: answer 302 has no Location to follow"):format(a.base),
      H.grep(res.lines, "^ERR")[1])
    res = H.run(CLIENT, { "ws://" .. a.base .. "/a", "{ followRedirects = 2 }" })
    assert.equal(("ERR 5 websocket handshake with ws://%s/a failed: answer 301 to Location ftp://x/: it is not a "
      .. "ws, wss, http or https URL"):format(a.base), H.grep(res.lines, "^ERR")[1])
  end)

  it("ws -> wss is followed (TLS to the new host); wss -> ws is refused", function()
    local dir = T.certs()
    local tls = flap("--tls", dir .. "/server.pem", dir .. "/server.key", "open:1000:5",
      "redirect:302:ws://127.0.0.1:9/plain")
    local a = flap("redirect:302:wss://localhost:" .. tls.port .. "/secure")
    local ssl = ("{ followRedirects = 2, ssl = { cafile = %q } }"):format(dir .. "/ca.pem")
    local res = H.run(CLIENT, { "ws://" .. a.base .. "/start", ssl })
    H.assert_exit(res, 0)
    assert.equal("OPEN ws://" .. a.base .. "/start", res.lines[1])
    assert.equal("MSG hello 1", res.lines[2])
    res = H.run(CLIENT, { "wss://localhost:" .. tls.port .. "/x", ssl })
    assert.equal(("ERR 5 websocket handshake with wss://localhost:%d/x failed: answer 302 to ws://127.0.0.1:9/plain "
      .. "refused: a redirect from wss:// to ws:// would drop TLS"):format(tls.port), H.grep(res.lines, "^ERR")[1])
  end)

  it("a hot reload keeps a redirected connection", function()
    local R = require "spec.support.reload"
    local counter = R.ws_counter()
    local a = flap("redirect:302:" .. counter.url .. "/echo")
    local function bot(v)
      return ([[
local mw = require "moonwire"
local c = mw.AsyncTcpConnection.new("ws://%s/start", { followRedirects = 1 })
c.onWebSocketConnect = function() print("%s open") end
c.onMessage = function(c, m) print("%s got " .. m) end
c:connect()
]]):format(a.base, v, v)
    end
    local p = R.start(bot("v1"))
    p:wait_line("^v1 open$", 10)
    counter:wait_line("^CONNECT 1 /echo")
    R.replace(p.path, bot("v2"))
    p:kill("sighup")
    R.wait_reloaded(p)
    counter:send("SEND 1 after\n")
    p:wait_line("^v2 got after$", 10)    -- the same socket, the new callback
    assert.equal(0, #counter:grep("^CONNECT 2 "))
    assert.equal(1, #a:grep("^CONNECT "))
    R.stop(p)
  end)

  it("the option's errors", function()
    local res = H.run([==[
local c = require("moonwire").AsyncTcpConnection.new("ws://127.0.0.1:1/")
for _, v in ipairs { -1, 21, 1.5, "x" } do print(pcall(function() c.followRedirects = v end)) end
]==])
    H.assert_exit(res, 0)
    for i = 1, 4 do
      assert.truthy(res.lines[i]:find("^false\t.*: followRedirects must be an integer 0%.%.20$"), res.lines[i])
    end
  end)
end)
