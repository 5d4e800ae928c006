-- Issue 17: the whole messages of one read go to Lua in one protected call, not one per
-- message. What that must not change, each with N messages the peer writes in one go
-- (spec/servers/ws_raw_peer.py, raw frames: so they normally arrive in one read, though
-- nothing here depends on it): an error in message k is reported once and k+1.. are still
-- delivered, in order; a callback that replaces onMessage sends the next message to the
-- new one; pauseRecv() in message k holds k+1.. until resumeRecv(), none lost or doubled;
-- destroy() or close() in message k delivers nothing after it (close() as Workerman's: the
-- messages still in flight are read and dropped while the server's close is awaited); a frame
-- the engine must refuse (invalid UTF-8) comes after the messages before it.
local H = require "spec.support.helper"
local W = require "spec.support.ws_raw"

-- One unmasked frame, FIN set (payload < 126 bytes).
local function frame(op, payload) return string.char(0x80 | op, #payload) .. payload end

-- Messages m1..mN as text frames, then `tail` (raw bytes), in one write.
local function burst(n, tail)
  local t = {}
  for i = 1, n do t[#t + 1] = frame(1, "m" .. i) end
  return "raw:" .. W.esc(table.concat(t) .. (tail or ""))
end

local function run(n, body, tail)
  local peer = W.peer({ "--then", burst(n, tail) })
  local res = H.run(W.script([==[
local c = open()
local N = tonumber(arg[2])
]==] .. body .. [==[
c:connect()
]==]), { peer.url, n }, { timeout = 20 })
  return res
end

local function msgs(from, to, fmt)
  local r = {}
  for i = from, to do r[#r + 1] = (fmt or "MSG text m%d"):format(i) end
  return r
end

describe("messages delivered together (issue 17)", function()
  after_each(H.cleanup)

  it("an error in message k is reported once and k+1.. are still delivered, in order", function()
    local res = run(40, [==[
c.onMessage = function(conn, d)
  print("MSG text " .. d)
  local i = tonumber(d:sub(2))
  if i == 5 or i == 6 or i == 30 then error("bad " .. i) end
  if i == N then conn:close() end
end
]==])
    H.assert_exit(res, 0)
    local got = {}
    for _, l in ipairs(res.lines) do if l:match("^MSG") then got[#got + 1] = l end end
    assert.same(msgs(1, 40), got)
    assert.equal(3, H.count_text(res.stderr, "stack traceback:"), res.stderr)
    for _, i in ipairs({ 5, 6, 30 }) do
      assert.equal(1, H.count_text(res.stderr, ": bad " .. i .. "\n"), res.stderr)
    end
  end)

  it("a callback that replaces onMessage sends the next message to the new one", function()
    local res = run(10, [==[
local function second(conn, d)
  print("B " .. d)
  if d == "m" .. N then conn:close() end
end
c.onMessage = function(conn, d)
  print("A " .. d)
  if d == "m3" then conn.onMessage = second end
end
]==])
    H.assert_exit(res, 0)
    local got = {}
    for _, l in ipairs(res.lines) do if l:match("^[AB] ") then got[#got + 1] = l end end
    assert.same({ "A m1", "A m2", "A m3", "B m4", "B m5", "B m6", "B m7", "B m8", "B m9", "B m10" }, got)
  end)

  it("pauseRecv() in message k holds k+1.. until resumeRecv(), none lost or doubled", function()
    local res = run(30, [==[
c.onMessage = function(conn, d)
  print("MSG text " .. d)
  if d == "m3" or d == "m17" then
    conn:pauseRecv()
    print("PAUSED")
    mw.Timer.add(0.01, function() print("RESUMED"); conn:resumeRecv() end, nil, false)
  end
  if d == "m" .. N then conn:close() end
end
]==])
    H.assert_exit(res, 0)
    local want = msgs(1, 3)
    table.insert(want, "PAUSED")
    table.insert(want, "RESUMED")
    for _, l in ipairs(msgs(4, 17)) do want[#want + 1] = l end
    table.insert(want, "PAUSED")
    table.insert(want, "RESUMED")
    for _, l in ipairs(msgs(18, 30)) do want[#want + 1] = l end
    local got = {}
    for _, l in ipairs(res.lines) do
      if l:match("^MSG") or l == "PAUSED" or l == "RESUMED" then got[#got + 1] = l end
    end
    assert.same(want, got)
  end)

  it("destroy() in message k delivers nothing after it", function()
    local res = run(20, [==[
c.onMessage = function(conn, d)
  print("MSG text " .. d)
  if d == "m4" then conn:destroy() end
end
]==])
    H.assert_exit(res, 0)
    local got = {}
    for _, l in ipairs(res.lines) do if l:match("^MSG") then got[#got + 1] = l end end
    assert.same(msgs(1, 4), got)
  end)

  local function messages_and_errors(res)
    local got = {}
    for _, l in ipairs(res.lines) do if l:match("^MSG") or l:match("^ERROR") then got[#got + 1] = l end end
    return got
  end

  local closing = [==[
c.onMessage = function(conn, d)
  print("MSG text " .. d)
  if d == "m4" then conn:close() end
end
c.onError = function(_, code, m) print("ERROR " .. code .. " " .. m) end
c.onClose = function() print("CLOSE") end
]==]

  it("close() in message k delivers nothing after it; the close handshake completes", function()
    local res = run(20, closing)
    H.assert_exit(res, 0)
    local got = messages_and_errors(res)
    assert.same(msgs(1, 4), got)
    assert.equal("CLOSE", res.lines[#res.lines])
  end)

  it("close() in message k: the server's close frame behind the dropped messages is still found", function()
    -- no reply is awaited for 5 s (closeTimeout) and no TIMEOUT error: the engine reads on
    local res = run(20, closing, frame(8, "\x03\xe8"))
    H.assert_exit(res, 0)
    local got = messages_and_errors(res)
    assert.same(msgs(1, 4), got)
    assert.equal("CLOSE", res.lines[#res.lines])
  end)

  it("close() in a fragmented message (the engine's own path) delivers nothing after it", function()
    local t = {}
    for i = 5, 9 do
      local a, b = "m", tostring(i)
      t[#t + 1] = string.char(0x01, #a) .. a .. string.char(0x80, #b) .. b
    end
    local res = run(4, [==[
c.onMessage = function(conn, d)
  print("MSG text " .. d)
  if d == "m6" then conn:close() end
end
c.onError = function(_, code, m) print("ERROR " .. code .. " " .. m) end
]==], table.concat(t))
    H.assert_exit(res, 0)
    local got = messages_and_errors(res)
    assert.same(msgs(1, 6), got)
  end)

  it("a frame the engine refuses (invalid UTF-8) comes after the messages before it", function()
    local res = run(6, "", frame(1, "x\xff") .. frame(1, "never"))
    H.assert_exit(res, 0)
    local ev = W.client_events(res.lines)
    assert.same(msgs(1, 6), { table.unpack(ev, 3, 8) }, table.concat(ev, "\n"))
    assert.is_not_nil(ev[9] and ev[9]:match("^ERROR %d+ .*UTF%-8"), table.concat(ev, "\n"))
    for _, l in ipairs(ev) do assert.is_nil(l:find("never", 1, true)) end
  end)
end)
