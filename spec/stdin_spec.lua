-- Issue 15: mw.stdin, standard input as an event source on the loop: onLine per line
-- and onEnd at the end, mw.stdin:read() in a coroutine, with a pipe, a file, and a real
-- terminal (tmux: send-keys, capture-pane); a script that does not use it never reads
-- fd 0.
local H = require "spec.support.helper"

local CALLBACKS = [[
local mw = require "moonwire"
mw.stdin.onLine = function(l) print("LINE[" .. l .. "]") end
mw.stdin.onEnd = function(err) print("END " .. tostring(err)) end
]]

local READER = [[
local mw = require "moonwire"
mw.spawn(function()
  local n, last = 0, nil
  while true do
    local l, err = mw.stdin:read()
    if not l then print("EOF " .. n .. " " .. tostring(last) .. " " .. tostring(err)) break end
    n, last = n + 1, l
  end
end)
]]

local function moonwire_with_stdin(src)
  local path = H.write_script(src)
  return H.spawn({ H.bin, path }, { name = "moonwire" })
end

describe("mw.stdin", function()
  after_each(H.cleanup)

  it("a pipe: a callback per line (CR LF and a last line without newline), then the end", function()
    local p = moonwire_with_stdin(CALLBACKS)
    p:send("one\n")
    p:wait_line("^LINE%[one%]$", 10)        -- delivered as it arrives, the pipe still open
    p:send("two\r\nthr")
    p:wait_line("^LINE%[two%]$", 10)
    p:send("ee")
    p:close_stdin()
    p:wait_line("^LINE%[three%]$", 10)
    p:wait_line("^END nil$", 10)
    assert.equal(0, p:wait(10))
  end)

  it("read() in a coroutine: 5,000 lines through a queue that pauses reading, then nil", function()
    local p = moonwire_with_stdin(READER)
    local t = {}
    for i = 1, 5000 do t[i] = "line " .. i end
    p:send(table.concat(t, "\n") .. "\n")
    p:close_stdin()
    p:wait_line("^EOF 5000 line 5000 nil$", 20)
    assert.equal(0, p:wait(10))
  end)

  it("a file: read a chunk per loop pass, every line", function()
    local file = H.tmpdir() .. "/input.txt"
    local f = assert(io.open(file, "w"))
    for i = 1, 3000 do f:write("row ", i, "\n") end
    f:close()
    local script = H.write_script(READER, "reader.lua")
    -- H.run puts the binary after the prefix: "$0" is moonwire
    local res = H.run(nil, nil, { prefix = { "sh", "-c", '"$0" "$1" < "$2"', H.bin, script, file }, argv = {} , timeout = 20 })
    H.assert_exit(res, 0)
    assert.same({ "EOF 3000 row 3000 nil" }, res.lines)
  end)

  it("a script that does not use it never reads fd 0", function()
    local file = H.tmpdir() .. "/shared.txt"
    local f = assert(io.open(file, "w"))
    f:write("first\nsecond\n")
    f:close()
    local script = H.write_script('print("ran")', "noread.lua")
    -- one open file for both: had moonwire read it, cat would find less
    local res = H.run(nil, nil, { prefix = { "sh", "-c", '{ "$0" "$1"; cat; } < "$2"', H.bin, script, file },
      argv = {}, timeout = 20 })
    H.assert_exit(res, 0)
    assert.same({ "ran", "first", "second" }, res.lines)
  end)

  it("a real terminal: lines as typed, ^D ends it", function()
    local tty = require("spec.support.tmux").session(H.bin .. " " .. H.write_script(CALLBACKS, "tty.lua"))
    tty:keys("hello tty", "Enter")
    tty:wait("LINE%[hello tty%]")
    assert.truthy(tty:pane():find("hello tty\n", 1, true))   -- the terminal echoed what was typed
    tty:keys("C-d")
    tty:wait("END nil")
    tty:wait("EXIT=0")
    tty:kill()
  end)
end)
