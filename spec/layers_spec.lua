-- The three layers go one way (style guide rule 1), checked on the includes:
-- src/ws/ (the sans-I/O engine) includes no socket, libev, TLS or Lua header;
-- the I/O layer (src/*.c) includes no Lua header; the binding (src/bind/) no
-- socket or frame-level header.
local H = require "spec.support.helper"

local function includes(dir, pattern)
  local found = {}
  local p = io.popen("ls " .. H.src .. "/" .. dir .. " 2>/dev/null")
  for name in p:lines() do
    if name:match(pattern) then
      local f = assert(io.open(H.src .. "/" .. dir .. "/" .. name))
      for line in f:lines() do
        local inc = line:match('^%s*#%s*include%s*[<"]([^>"]+)[>"]')
        if inc then found[#found + 1] = { file = dir .. "/" .. name, inc = inc } end
      end
      f:close()
    end
  end
  p:close()
  return found
end

local function offenders(list, forbidden)
  local bad = {}
  for _, e in ipairs(list) do
    for _, f in ipairs(forbidden) do
      if e.inc:find(f) then bad[#bad + 1] = e.file .. " includes " .. e.inc end
    end
  end
  return bad
end

describe("layering", function()
  it("src/ws/ knows no socket, loop, TLS or Lua", function()
    local list = includes("src/ws", "%.[ch]$")
    assert.is_true(#list > 10)
    assert.same({}, offenders(list, { "^sys/socket", "^netinet", "^arpa", "^ev%.h", "wolfssl",
      "^lua", "lauxlib", "ares", "conn%.h", "loop%.h", "bind" }))
  end)

  it("the I/O layer (src/*.c, src/*.h) knows no Lua and no frame bits", function()
    local list = includes("src", "%.[ch]$")
    local io_only = {}
    for _, e in ipairs(list) do
      -- main.c is the program itself, host.c its Lua host (the Lua state and
      -- the one door), proto_ws.c the one glue to the ws engine
      if not e.file:find("/main%.c$") and not e.file:find("/host%.c$") and not e.file:find("/proto_ws%.c$") then
        io_only[#io_only + 1] = e
      end
    end
    assert.same({}, offenders(io_only, { "^lua", "lauxlib", "bind/", "ws/" }))
  end)

  it("the binding (src/bind/) makes no syscalls and knows no frame bits", function()
    local list = includes("src/bind", "%.[ch]$")
    assert.same({}, offenders(list, { "^sys/socket", "^netinet", "^arpa", "^unistd", "ws/", "wolfssl",
      "ev%.h", "ares" }))
  end)
end)
