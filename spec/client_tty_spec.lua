-- Issue 16: `moonwire -c` on a real terminal (tmux): a prompt with line editing and
-- history (GNU readline); a message that arrives while a line is being typed is printed
-- above the prompt and the typed line is drawn again; ^D closes and exits 0, ^C too.
local H = require "spec.support.helper"
local R = require "spec.support.reload"
local TM = require "spec.support.tmux"

describe("moonwire -c on a terminal", function()
  after_each(H.cleanup)

  it("redraws the line being typed when a message arrives; history; ^D", function()
    local srv = R.ws_counter()
    local tty = TM.session(H.bin .. " -c " .. srv.url .. "/echo")
    srv:wait_line("^CONNECT 1 ", 10)
    tty:wait("^>")
    tty:keys("first", "Enter")
    tty:wait("\n< first")
    tty:keys("half")
    tty:wait("> half")
    srv:send("SEND 1 pushed\n")
    tty:wait("< pushed\n> half")        -- printed above; the half-typed line is back
    tty:keys("_done", "Enter")
    tty:wait("< half_done")
    srv:wait_line("^MSG 1 half_done$")
    tty:keys("Up")                      -- history
    tty:wait("> half_done\n[^<]*$")
    tty:keys("C-u", "C-d")
    tty:wait("EXIT=0")
    srv:wait_line("^CLOSE 1 1000")
    tty:kill()
  end)

  it("^C ends it gracefully (the connection closed with 1001), the terminal given back", function()
    local srv = R.ws_counter()
    local tty = TM.session(H.bin .. " -c " .. srv.url .. "/echo")
    srv:wait_line("^CONNECT 1 ", 10)
    tty:wait("^>")
    tty:keys("C-c")
    tty:wait("EXIT=0")
    srv:wait_line("^CLOSE 1 1001")
    tty:kill()
  end)
end)
