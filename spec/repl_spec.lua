-- Issue 16 part 2: `moonwire -i`, a Lua prompt on the running loop: over a pipe
-- (expressions print their values, statements, multi-line chunks, errors and the prompt
-- again, the end of input stops gracefully) and on a real terminal under tmux (a
-- connection made at the prompt receives messages while the prompt waits, printed above
-- it; a script run first; ^D).
local H = require "spec.support.helper"
local R = require "spec.support.reload"
local TM = require "spec.support.tmux"

describe("moonwire -i", function()
  after_each(H.cleanup)

  it("over a pipe: values, statements, multi-line chunks, an error, then the end", function()
    local p = H.spawn({ H.bin, "-i" }, { name = "moonwire -i" })
    p:send("1 + 1\nx = 5\nfunction f(a)\n  return a * 2\nend\nf(x), 'two'\nerror('oops')\nnil\nx\n")
    p:close_stdin()
    assert.equal(0, p:wait(10))
    assert.same({ "2", "10\ttwo", "nil", "5" }, p.lines)
    assert.truthy(p:stderr_text():find("moonwire: error in prompt: stdin:1: oops", 1, true), p:stderr_text())
  end)

  it("runs the script first, then the prompt sees its globals", function()
    local script = H.write_script("greeting = 'hi from the script'", "first.lua")
    local p = H.spawn({ H.bin, "-i", script }, { name = "moonwire -i" })
    p:send("greeting\n")
    p:close_stdin()
    assert.equal(0, p:wait(10))
    assert.same({ "hi from the script" }, p.lines)
  end)

  it("on a terminal: a connection made at the prompt receives while the prompt waits", function()
    local srv = R.ws_counter()
    local tty = TM.session(H.bin .. " -i")
    tty:wait("^>")
    tty:keys('c = mw.AsyncTcpConnection.new("' .. srv.url .. '/echo")', "Enter")
    tty:keys('c.onMessage = function(_, m) print("got " .. m) end', "Enter")
    tty:keys("c:connect()", "Enter")
    srv:wait_line("^CONNECT 1 ", 10)
    tty:keys("function g()", "Enter")
    tty:wait("\n>>")
    tty:type("return 40 + 2")
    tty:keys("Enter")
    tty:type("end")
    tty:keys("Enter")
    tty:keys("g")                           -- typed, not entered, when the message comes
    srv:send("SEND 1 pushed\n")
    tty:wait("got pushed\n> g")             -- above the prompt, the typed line back
    tty:keys("()", "Enter")
    tty:wait("\n42\n")
    tty:keys("error('bad')", "Enter")
    tty:wait("error in prompt: stdin:1: bad")
    tty:keys("1 + 2", "Enter")
    tty:wait("\n3\n")
    tty:type("abc")
    tty:keys("C-c")                         -- ^C drops the line, the program goes on
    tty:wait("> abc%^C\n>")
    tty:type("while true do end")
    tty:keys("Enter")
    tty:keys("C-c")                         -- and interrupts a runaway chunk
    tty:wait("error in prompt: stdin:1: interrupted")
    tty:type("c:getStatus()")
    tty:keys("Enter")
    tty:wait("\nESTABLISHED\n")            -- the connection lived through it all
    tty:keys("C-d")
    tty:wait("EXIT=0")
    srv:wait_line("^CLOSE 1 1001")          -- stopped as SIGTERM does
    tty:kill()
  end)
end)
