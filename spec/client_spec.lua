-- Issue 16 part 1: `moonwire -c URL`, a client at the terminal as wscat is, over pipes
-- (no terminal: no prompt, each input line a message, end of input closes with 1000)
-- against Python websockets and a line echo server: sending, receiving, binary, the
-- slash commands, the options, the exit codes.
local H = require "spec.support.helper"

local function peer(...) local p = H.peer("ws_py_peer.py", { ... }) p.url = "ws://127.0.0.1:" .. p.port return p end

local function client(args)
  local argv = { H.bin, "-c" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return H.spawn(argv, { name = "moonwire -c" })
end

describe("moonwire -c", function()
  after_each(H.cleanup)

  it("sends each line, prints each message, commands, then the end of input closes with 1000", function()
    local srv = peer()
    local p = client({ srv.url .. "/echo", "-P" })
    p:send("hello\n")
    p:wait_line("^< hello$", 10)
    p:send("/binary 01ff\n")
    p:wait_line("^< 01 ff$", 10)
    p:send("/ping abc\n")
    p:wait_line("^< pong abc$", 10)
    p:send("/help\n")
    p:wait_line("^/ping %[data%]  /close", 10)
    p:send("/nope\n")
    p:wait_line("^! unknown command /nope", 10)
    p:close_stdin()
    assert.equal(0, p:wait(10))
    -- stdout is a pipe: no colours
    assert.falsy(p:stdout_text():find("\27[", 1, true), p:stdout_text())
    srv:wait_line("^MSG binary 2 ")
    srv:wait_line("^CLOSE 1000", 10)
  end)

  it("-x sends and waits, -b sends binary, --show-headers prints the 101, -H and -o reach the server", function()
    local srv = peer()
    local res = H.run(nil, nil, { argv = { "-c", srv.url .. "/echo", "-x", "one", "-x", "two", "-w", "0.5", "-b",
      "--show-headers", "-H", "X-Test: yes", "-o", "http://origin.test" }, timeout = 20 })
    H.assert_exit(res, 0)
    assert.equal("HTTP/1.1 101 Switching Protocols", res.lines[1])
    assert.equal(2, #H.grep(res.lines, "^< 6f 6e 65$") + #H.grep(res.lines, "^< 74 77 6f$"))
    local _, hdrs = srv:wait_line("^CONNECT /echo (.*)$", 5)
    assert.truthy(hdrs:find("X-Test=yes", 1, true), hdrs)
    assert.truthy(hdrs:find("Origin=http://origin.test", 1, true), hdrs)
    srv:wait_line("^MSG binary 3 ")
  end)

  it("--compression off offers none; --quiet-binary prints lengths", function()
    local srv = peer()
    local res = H.run(nil, nil, { argv = { "-c", srv.url .. "/send/300", "--compression", "off", "--quiet-binary",
      "-x", "x", "-w", "0.5" }, timeout = 20 })
    H.assert_exit(res, 0)
    srv:wait_line("^EXT %-$", 5)
    assert.truthy(H.grep(res.lines, "^< %[binary 300 bytes%]$")[1], H.describe(res))
  end)

  it("text:// works the same (a netcat for moonwire's protocols)", function()
    local srv = H.server("echo", { "--framing", "line" })
    local p = client({ "text://127.0.0.1:" .. srv.port })
    p:send("a line\n")
    p:wait_line("^< a line$", 10)
    p:close_stdin()
    assert.equal(0, p:wait(10))
  end)

  it("exit 1 after a failed connect (the message on stderr), 2 for bad usage", function()
    local res = H.run(nil, nil, { argv = { "-c", "ws://127.0.0.1:1/" } })
    assert.equal(1, res.code)
    assert.truthy(res.stderr:find("connect ws://127.0.0.1:1/: connection refused", 1, true), res.stderr)
    for _, args in ipairs { {}, { "ws://a/", "ws://b/" }, { "ws://a/", "--bogus" }, { "ws://a/", "-w", "x" },
                            { "ws://a/", "-H", "no colon" }, { "ftp://x/" } } do
      local argv = { "-c" }
      for _, a in ipairs(args) do argv[#argv + 1] = a end
      res = H.run(nil, nil, { argv = argv })
      assert.equal(2, res.code, table.concat(args, " ") .. "\n" .. res.stderr)
      assert.truthy(res.stderr:find("usage: moonwire -c URL", 1, true))
    end
  end)
end)
