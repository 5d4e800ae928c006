-- Issue 15: examples/sequential.lua, the login -> reply -> subscribe -> N messages flow
-- as one function (mw.spawn, mw.connect, conn:receive), run as it is against a real
-- server (spec/servers/ws_feed.py, stdlib sockets): its exact output, and what the server
-- saw, for a full run, a feed that ends early and a refused login.
local H = require "spec.support.helper"

local EXAMPLE = H.src .. "/examples/sequential.lua"

local function feed(args)
  local p = H.peer("ws_feed.py", args)
  p.url = "ws://127.0.0.1:" .. p.port .. "/feed"
  return p
end

local function example(args)
  local res = H.run(nil, args, { path = EXAMPLE, timeout = 20 })
  H.assert_exit(res, 0)
  return res
end

-- The server's lines from CONNECT up to the connection's end (CLOSE or EOF).
local function server_saw(srv)
  srv:wait_line("^CLOSE ", 10)
  local saw = {}
  for _, l in ipairs(srv.lines) do
    if not l:find("^PORT ") then saw[#saw + 1] = l end
  end
  return saw
end

describe("examples/sequential.lua", function()
  after_each(H.cleanup)

  it("logs in, subscribes, prints N messages of a longer feed and closes with 1000 done", function()
    local srv = feed { "--count", 5 }
    local res = example { srv.url, 3 }
    assert.same({
      "connected to " .. srv.url,
      "logged in as alice",
      "subscribed to trades",
      "message 1: trades 1 price=101",
      "message 2: trades 2 price=102",
      "message 3: trades 3 price=103",
      "received 3 messages, closing",
    }, res.lines)
    assert.equal("", res.stderr)
    assert.same({ "CONNECT /feed", "GOT login alice", "GOT subscribe trades", "CLOSE 1000 done" },
      server_saw(srv))
  end)

  it("says how many messages came when the server closes the feed early", function()
    local srv = feed { "--count", 3, "--end" }
    local res = example { srv.url, 5 }
    assert.same({
      "connected to " .. srv.url,
      "logged in as alice",
      "subscribed to trades",
      "message 1: trades 1 price=101",
      "message 2: trades 2 price=102",
      "message 3: trades 3 price=103",
    }, res.lines)
    assert.equal("sequential: the server closed after 3 of 5 messages: 1000 end of feed\n", res.stderr)
  end)

  it("stops at a refused login and closes (its <close> variable)", function()
    local srv = feed {}
    local res = example { srv.url, 3, "mallory" }
    assert.same({ "connected to " .. srv.url }, res.lines)
    assert.equal("sequential: login refused: denied mallory\n", res.stderr)
    assert.same({ "CONNECT /feed", "GOT login mallory", "CLOSE 1000 -" }, server_saw(srv))
  end)

  it("reports a connect that fails", function()
    local srv = feed {}
    srv:kill()
    srv:wait(5)
    local res = example { srv.url, 3 }
    assert.same({}, res.lines)
    assert.matches("^sequential: connect " .. srv.url:gsub("%p", "%%%0") .. ": connection refused\n$", res.stderr)
  end)
end)
