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

-- What the compiler sees: the dependency files the build's own compiler wrote (-MD: the
-- full include closure of each object, system headers too), and the symbols each object
-- defines and uses (nm). Modules are files less their extension (conn.c with conn.h;
-- a private x_int.h goes with x).
local function sh(cmd)
  local p = assert(io.popen(cmd))
  local t = p:read("a")
  p:close()
  return t
end

local function objects()
  local list = {}
  local root = H.build .. "/CMakeFiles/mwcore.dir/"
  for path in sh("find " .. root .. "src -name '*.c.o' | sort"):gmatch("[^\n]+") do
    list[#list + 1] = { path = path, file = path:sub(#root + 1):gsub("%.o$", "") }
  end
  return list
end

local function module_of(file)
  return (file:gsub("%.[ch]$", ""):gsub("_int$", ""))
end

-- The closure of one object: every header path in its .d file.
local function closure(obj)
  local f = assert(io.open(obj.path .. ".d"))
  local text = f:read("a"):gsub("\\\n", " ")
  f:close()
  local deps = {}
  for dep in text:gmatch("%S+") do
    if dep:match("%.h$") then deps[#deps + 1] = dep end
  end
  return deps
end

local real_src
local function project_rel(path)
  local src = H.src:gsub("/$", "")
  real_src = real_src or sh("cd " .. src .. " && pwd -P"):gsub("\n", "")
  local abs = path
  if not abs:find("^/") then abs = H.build .. "/" .. abs end
  abs = abs:gsub("/%./", "/")
  repeat local n; abs, n = abs:gsub("/[^/]+/%.%./", "/") until n == 0
  for _, root in ipairs { src, real_src } do
    if abs:sub(1, #root + 1) == root .. "/" then return abs:sub(#root + 2) end
  end
  return nil
end

-- Strongly connected components of a graph given as edges[a][b] = why.
local function cycles(nodes, edges)
  local index, low, stack, on, n, found = {}, {}, {}, {}, 0, {}
  local function visit(v)
    n = n + 1
    index[v], low[v] = n, n
    stack[#stack + 1], on[v] = v, true
    local outs = {}
    for w in pairs(edges[v] or {}) do outs[#outs + 1] = w end
    table.sort(outs)
    for _, w in ipairs(outs) do
      if not index[w] then
        visit(w)
        low[v] = math.min(low[v], low[w])
      elseif on[w] then
        low[v] = math.min(low[v], index[w])
      end
    end
    if low[v] == index[v] then
      local comp = {}
      repeat
        local w = table.remove(stack)
        on[w] = nil
        comp[#comp + 1] = w
      until w == v
      if #comp > 1 then
        table.sort(comp)
        local lines = { table.concat(comp, " <-> ") }
        local inside = {}
        for _, x in ipairs(comp) do inside[x] = true end
        for _, a in ipairs(comp) do
          for b, why in pairs(edges[a] or {}) do
            if inside[b] then lines[#lines + 1] = "  " .. a .. " -> " .. b .. ": " .. why end
          end
        end
        table.sort(lines, function(x, y) return (x:sub(1, 1) ~= " ") and (y:sub(1, 1) == " ") or
          ((x:sub(1, 1) == " ") == (y:sub(1, 1) == " ") and x < y) end)
        found[#found + 1] = table.concat(lines, "\n")
      end
    end
  end
  table.sort(nodes)
  for _, v in ipairs(nodes) do if not index[v] then visit(v) end end
  return found
end

describe("layering, as the compiler sees it (issue 12 point 6)", function()
  local objs = objects()

  it("the build's objects and dependency files are there", function()
    assert.is_true(#objs >= 20, "no objects under " .. H.build .. " (build first)")
    for _, o in ipairs(objs) do assert.is_true(#closure(o) > 0, o.file) end
  end)

  -- rules on the whole include closure of each source file
  local RULES = {
    { what = "src/ws/ (the sans-I/O engine)", match = "^src/ws/",
      forbid = { "sys/socket%.h$", "/netinet/", "/arpa/", "/ev%.h$", "wolfssl/", "/lua5%.4/",
                 "/lauxlib%.h$", "/ares%.h$" }, only_project = { "^src/ws/", "^src/buf%.h$", "^src/crypto%.h$" } },
    { what = "the I/O layer (src/*.c)", match = "^src/[^/]+%.c$",
      except = { "^src/main%.c$", "^src/host%.c$", "^src/proto_ws%.c$" },
      forbid = { "/lua5%.4/", "/lauxlib%.h$" }, forbid_project = { "^src/bind/", "^src/ws/" } },
    { what = "proto_ws.c (the one glue to the engine)", match = "^src/proto_ws%.c$",
      forbid = { "/lua5%.4/", "/lauxlib%.h$" }, forbid_project = { "^src/bind/" } },
    { what = "the binding (src/bind/)", match = "^src/bind/",
      forbid = { "sys/socket%.h$", "/netinet/", "/arpa/", "wolfssl/", "/ares%.h$" },
      forbid_project = { "^src/ws/" } },
    -- zlib is the engine's (permessage-deflate), and there only ws_deflate.c's:
    -- the rest reaches it through ws_deflate.h, which names no zlib type
    { what = "zlib (only src/ws/ws_deflate.c)", match = "^src/", except = { "^src/ws/ws_deflate%.c$" },
      forbid = { "/zlib%.h$", "/zconf%.h$" } },
  }

  for _, rule in ipairs(RULES) do
    it(rule.what .. ": nothing forbidden in any file's include closure", function()
      local bad, checked = {}, 0
      for _, o in ipairs(objs) do
        local skip = not o.file:find(rule.match)
        for _, e in ipairs(rule.except or {}) do skip = skip or o.file:find(e) ~= nil end
        if not skip then
          checked = checked + 1
          for _, dep in ipairs(closure(o)) do
            local rel = project_rel(dep)
            for _, f in ipairs(rule.forbid) do
              if not rel and dep:find(f) then bad[#bad + 1] = o.file .. " sees " .. dep end
            end
            if rel then
              for _, f in ipairs(rule.forbid_project or {}) do
                if rel:find(f) then bad[#bad + 1] = o.file .. " sees " .. rel end
              end
              if rule.only_project then
                local ok = false
                for _, allowed in ipairs(rule.only_project) do ok = ok or rel:find(allowed) ~= nil end
                if not ok then bad[#bad + 1] = o.file .. " sees " .. rel end
              end
            end
          end
        end
      end
      assert.is_true(checked > 0, "no file matched " .. rule.match)
      table.sort(bad)
      assert.same({}, bad)
    end)
  end

  it("no cycle between source files, by include or by call", function()
    local edges, nodes, seen, defined = {}, {}, {}, {}
    local function node(m) if not seen[m] then seen[m] = true; nodes[#nodes + 1] = m end end
    local function edge(a, b, why)
      node(a); node(b)
      if a == b then return end
      edges[a] = edges[a] or {}
      edges[a][b] = edges[a][b] or why
    end
    for _, o in ipairs(objs) do
      for line in sh("nm --defined-only " .. o.path):gmatch("[^\n]+") do
        local kind, sym = line:match("^%x+ (%a) (%S+)$")
        if kind and kind:match("%u") then defined[sym] = module_of(o.file) end
      end
    end
    for _, o in ipairs(objs) do
      local m = module_of(o.file)
      node(m)
      for sym in sh("nm --undefined-only " .. o.path):gmatch("U (%S+)") do
        if defined[sym] then edge(m, defined[sym], "uses " .. sym) end
      end
    end
    -- direct includes between the project's own files
    for file in sh("cd " .. H.src .. " && find src -name '*.[ch]' | sort"):gmatch("[^\n]+") do
      local f = assert(io.open(H.src .. "/" .. file))
      local dir = file:match("^(.*)/")
      for line in f:lines() do
        local inc = line:match('^%s*#%s*include%s*"([^"]+)"')
        if inc then
          for _, cand in ipairs { dir .. "/" .. inc, "src/" .. inc } do
            repeat local n; cand, n = cand:gsub("[^/]+/%.%./", "") until n == 0
            local g = io.open(H.src .. "/" .. cand)
            if g then
              g:close()
              edge(module_of(file), module_of(cand), "includes " .. cand)
              break
            end
          end
        end
      end
      f:close()
    end
    assert.is_true(#nodes >= 20)
    assert.same({}, cycles(nodes, edges))
  end)

  it("the cycle finder finds a cycle and its edges", function()
    local edges = { a = { b = "uses f" }, b = { c = "includes c.h" }, c = { a = "uses g" }, d = { a = "x" } }
    local found = cycles({ "a", "b", "c", "d" }, edges)
    assert.equal(1, #found)
    assert.matches("^a <%-> b <%-> c\n", found[1])
    assert.matches("a %-> b: uses f", found[1])
    assert.same({}, cycles({ "a", "b" }, { a = { b = "x" } }))
  end)
end)
