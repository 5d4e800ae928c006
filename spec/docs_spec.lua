-- Issue 11, point 17: the repository documents its whole API itself. Every name a script
-- can reach (the module's fields, the constants, every connection method, property and
-- callback, Timer and Worker, the command line's options) is asked of the real binary and
-- must be documented in README.md, and the README points to no file outside the repository.
local H = require "spec.support.helper"

local function readme()
  local f = assert(io.open(H.src .. "/README.md"))
  local text = f:read("a")
  f:close()
  return text
end

-- Does the README document `name`: in backticks, alone or as the start of a call or a
-- qualified name (`send(data [, raw])`, `Timer.add(...)`, `mw.now()`, `conn.onMessage`)?
-- The README's code: its inline spans and the lines of its fenced blocks.
local function code_spans(text)
  local spans = {}
  local prose = text:gsub("\n```[^\n]*\n(.-)\n```", function(block)
    for line in block:gmatch("[^\n]+") do spans[#spans + 1] = line end
    return "\n"
  end)
  -- a span may go on over a line break, as in Markdown
  for code in prose:gmatch("`([^`]+)`") do spans[#spans + 1] = (code:gsub("\n", " ")) end
  return spans
end

local function documented(text, name)
  local plain = name:gsub("%p", "%%%0")
  for _, code in ipairs(code_spans(text)) do
    if code == name or code:find("^" .. plain .. "[%s%(%[=]")
        or code:find("[%.:]" .. plain .. "$") or code:find("[%.:]" .. plain .. "[%s%(%[=]")
        or (name:find("^%-") and code:find("%f[%w%-]" .. plain .. "%f[^%w%-]")) then
      return true
    end
  end
  return false
end

-- Asks the binary for every public name; one line per name, "<where> <name>".
local LISTER = [=[
local mw = require "moonwire"
local core = require "moonwire.core"
local function keys(t, where)
  local ks = {}
  for k in pairs(t) do
    if type(k) == "string" and not k:find("^_") then ks[#ks + 1] = k end
  end
  table.sort(ks)
  for _, k in ipairs(ks) do print(where .. " " .. k) end
end
keys(mw, "mw")
keys(mw.Ws, "Ws")
keys(mw.errors, "errors")
keys(mw.Timer, "Timer")
keys(mw.Worker, "Worker")
keys(core.connMethods, "method")
local w = mw.Worker.new()
for _, k in ipairs { "id", "count" } do if w[k] ~= nil then print("worker " .. k) end end
local f = core.connFields()
for _, k in ipairs(f.properties) do print("property " .. k) end
for _, k in ipairs(f.callbacks) do print("callback " .. k) end
for _, k in ipairs(f.options) do print("option " .. k) end
for _, k in ipairs(mw.Worker._callbacks) do print("workercb " .. k) end
]=]

describe("documentation (issue 11 point 17)", function()
  after_each(H.cleanup)

  it("README.md points to no design note outside the repository", function()
    local text = readme()
    assert.is_nil(text:find("api.md", 1, true), "README.md mentions api.md")
    assert.is_nil(text:find("shared/design", 1, true), "README.md mentions shared/design")
  end)

  it("every name a script can reach is documented in README.md", function()
    local res = H.run(LISTER)
    H.assert_exit(res, 0)
    local kinds, missing = {}, {}
    local text = readme()
    for _, line in ipairs(res.lines) do
      local where, name = line:match("^(%S+) (%S+)$")
      assert.is_not_nil(where, "unexpected line: " .. line)
      kinds[where] = (kinds[where] or 0) + 1
      if not documented(text, name) then missing[#missing + 1] = where .. " " .. name end
    end
    -- the lister saw every kind of name (an empty list would prove nothing)
    for _, k in ipairs { "mw", "Ws", "errors", "Timer", "Worker", "method", "worker",
                         "property", "callback", "option", "workercb" } do
      assert.is_true((kinds[k] or 0) > 0, "no names of kind " .. k .. "\n" .. H.describe(res))
    end
    assert.is_true(kinds.method >= 24 and kinds.property >= 16 and kinds.callback >= 10,
      H.describe(res))
    assert.same({}, missing)
  end)

  it("every command-line option of --help is documented in README.md", function()
    local res = H.run(nil, nil, { argv = { "--help" } })
    H.assert_exit(res, 0)
    local text, opts, missing = readme(), {}, {}
    for opt in res.stdout:gmatch("%f[%w%-](%-%-?[%a][%w%-]*)") do opts[opt] = true end
    assert.is_true(opts["--watch"] and opts["--check"] and opts["-e"] and true or false,
      res.stdout)
    for opt in pairs(opts) do
      if not documented(text, opt) then missing[#missing + 1] = opt end
    end
    table.sort(missing)
    assert.same({}, missing)
  end)

  it("the matcher itself finds names only in code spans", function()
    local text = "Use `send(data)` and `conn.onMessage`, `Timer.add(1, f)`; plain close here."
    assert.is_true(documented(text, "send"))
    assert.is_true(documented(text, "onMessage"))
    assert.is_true(documented(text, "add"))
    assert.is_false(documented(text, "close"))
    assert.is_false(documented(text, "sen"))
    local fenced = "Run:\n\n```\nmoonwire --watch bot.lua\n```\n\nand `-e`, not --check."
    assert.is_true(documented(fenced, "--watch"))
    assert.is_true(documented(fenced, "-e"))
    assert.is_false(documented(fenced, "--check"))
    assert.is_false(documented(fenced, "--wat"))
  end)
end)
