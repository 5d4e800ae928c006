-- Issue 2, item 7: an error inside any callback prints the message and a traceback to
-- stderr and the host keeps running; a syntax error in the main script exits 1 with the
-- compiler's message.
local H = require "spec.support.helper"

local line_of = H.line_of

local count = H.count_text

-- The message Lua's own compiler gives for `src` loaded as script.lua.
local function compiler_message(src)
  local _, err = load(src, "@script.lua")
  return err
end

describe("script errors (issue 2 item 7)", function()
  after_each(H.cleanup)

  it("errors in onConnect, onMessage, a timer, onClose and onError are reported with a traceback; the host goes on",
    function()
      local srv = H.server("echo")
      local src = [==[
        local mw = require "moonwire"
        local c = mw.AsyncTcpConnection.new(arg[1])
        c.onConnect = function(conn)
          conn:send("first")
          error("boom in onConnect")
        end
        c.onMessage = function(conn, data)
          print("MESSAGE", data, conn:getStatus())
          if data == "first" then conn:send("second"); error("boom in onMessage") end
          conn:close()
        end
        c.onClose = function(conn)
          print("CLOSED")
          local t = nil
          return t.field   -- boom in onClose
        end
        c:connect()
        mw.Timer.add(0.01, function() error("boom in timer") end, nil, false)
        local r = mw.AsyncTcpConnection.new("tcp://127.0.0.1:1")
        r.onError = function() error("boom in onError") end
        r.onClose = function() print("REFUSED CLOSED") end
        r:connect()
        mw.Timer.add(0.5, function() print("STILL ALIVE") end, nil, false)
      ]==]
      local res = H.run(src, { "text://127.0.0.1:" .. srv.port })
      H.assert_exit(res, 0)
      -- the connection stayed established after the error in onConnect and in onMessage
      assert.same({ "MESSAGE\tfirst\tESTABLISHED", "MESSAGE\tsecond\tESTABLISHED" },
        H.grep(res.lines, "^MESSAGE"))
      assert.same({ "CLOSED" }, H.grep(res.lines, "^CLOSED"))
      assert.same({ "REFUSED CLOSED" }, H.grep(res.lines, "^REFUSED CLOSED"))
      assert.equal("STILL ALIVE", res.lines[#res.lines])
      for _, what in ipairs { "boom in onConnect", "boom in onMessage", "boom in timer",
                              "boom in onError" } do
        local where = "script.lua:" .. line_of(src, 'error("' .. what) .. ": " .. what
        assert.is_true(res.stderr:find(where, 1, true) ~= nil, "missing " .. where .. "\n" .. res.stderr)
      end
      local where = "script.lua:" .. line_of(src, "boom in onClose") .. ": attempt to index a nil value"
      assert.is_true(res.stderr:find(where, 1, true) ~= nil, "missing " .. where .. "\n" .. res.stderr)
      assert.equal(5, count(res.stderr, "stack traceback:"), res.stderr)
    end)

  it("an error value that is not a string does not stop the host", function()
    local res = H.run([==[
      local mw = require "moonwire"
      mw.Timer.add(0.01, function() error({ code = 1 }) end, nil, false)
      mw.Timer.add(0.02, function() error() end, nil, false)
      mw.Timer.add(0.03, function() error(setmetatable({}, { __tostring = function() return "custom object" end })) end, nil, false)
      mw.Timer.add(0.1, function() print("STILL ALIVE") end, nil, false)
    ]==])
    H.assert_exit(res, 0)
    assert.same({ "STILL ALIVE" }, res.lines)
    assert.is_true(res.stderr:find("custom object", 1, true) ~= nil, res.stderr)
    assert.is_true(res.stderr ~= "")
  end)

  -- The door reports the error from the stack of the thread the call ran on:
  -- core.call (the door for the Lua side's own hooks) inside a coroutine used
  -- to print the main thread's top ("(non-string error)") and pop it.
  it("an error through core.call on a coroutine's thread is reported with its own message", function()
    local src = [==[
      local mw = require "moonwire"
      local core = require "moonwire.core"
      mw.Timer.add(0.01, function()
        local co = coroutine.wrap(function(a)
          local ok = core.call("myHook", function() error("boom in a coroutine") end)
          return a, ok
        end)
        print("RESULT", co("kept"))
      end, nil, false)
    ]==]
    local res = H.run(src)
    H.assert_exit(res, 0)
    assert.same({ "RESULT\tkept\tfalse" }, res.lines)
    local want = ("moonwire: error in myHook: %s/script.lua:%d: boom in a coroutine\nstack traceback:\n"):format(
      H.tmpdir(), line_of(src, "boom in a coroutine"))
    assert.equal(1, count(res.stderr, want), H.describe(res))
    assert.equal(1, count(res.stderr, "moonwire: error in"), H.describe(res))
  end)

  it("a syntax error in the main script exits 1 with the compiler's message; nothing runs",
    function()
      local src = 'print("RAN")\nlocal x = 1\nlocal = 3\n'
      local res = H.run(src, {}, { raw = true })
      H.assert_exit(res, 1)
      assert.equal("", res.stdout)
      local msg = compiler_message(src)          -- script.lua:3: <name> expected near '='
      assert.matches("^script%.lua:3: ", msg)
      assert.is_true(res.stderr:find(msg, 1, true) ~= nil, "expected " .. msg .. " in\n" .. res.stderr)
    end)

  it("a runtime error in the main chunk exits 1 with the message and a traceback", function()
    local res = H.run('print("BEFORE")\nlocal t = nil\nprint(t.x)\n', {}, { raw = true })
    H.assert_exit(res, 1)
    assert.equal("BEFORE", res.stdout)
    assert.is_true(res.stderr:find("script.lua:3: attempt to index a nil value", 1, true) ~= nil,
      res.stderr)
    assert.is_true(res.stderr:find("stack traceback:", 1, true) ~= nil, res.stderr)
  end)

  it("a script file that does not exist exits 1 naming it", function()
    local res = H.run(nil, {}, { path = "/nonexistent/dir/missing.lua" })
    H.assert_exit(res, 1)
    assert.is_true(res.stderr:find("missing.lua", 1, true) ~= nil, res.stderr)
  end)
end)
