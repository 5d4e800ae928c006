-- Issue 2, item 11: moonwire --check, -e, --version, --help, and `arg` as lua(1) sets it;
-- plus the module basics of api.md (package.path, mw.now, mw.version).
local H = require "spec.support.helper"

-- The project version from CMakeLists.txt, which the binary reports.
local function project_version()
  local f = assert(io.open(H.src .. "/CMakeLists.txt"))
  local text = f:read("a")
  f:close()
  return assert(text:match("project%s*%(%s*moonwire%s+VERSION%s+([%d.]+)"))
end

local function cli(argv, opts)
  opts = opts or {}
  opts.argv = argv
  return H.run(nil, nil, opts)
end

describe("command line (issue 2 item 11)", function()
  after_each(H.cleanup)

  it("--version prints `moonwire <version>` and exits 0", function()
    local res = cli { "--version" }
    H.assert_exit(res, 0)
    -- `moonwire <version>`, optionally followed by more (e.g. the Lua version)
    assert.equal(1, #res.lines)
    local v = project_version():gsub("%.", "%%.")
    assert.matches("^moonwire " .. v .. "$", (res.lines[1]:gsub(" %(.*%)$", "")))
  end)

  it("mw.version is the same version string", function()
    local res = cli { "-e", 'print(require("moonwire").version)' }
    H.assert_exit(res, 0)
    assert.same({ project_version() }, res.lines)
  end)

  it("--help prints usage naming every option and exits 0", function()
    local res = cli { "--help" }
    H.assert_exit(res, 0)
    local text = res.stdout:lower()
    assert.matches("usage", text)
    for _, opt in ipairs { "--check", "-e", "--version", "--help" } do
      assert.is_true(res.stdout:find(opt, 1, true) ~= nil, "usage lacks " .. opt)
    end
  end)

  it("an unknown option exits non-zero with a message on stderr", function()
    local res = cli { "--no-such-option" }
    assert.is_false(res.timed_out)
    assert.is_true(res.code ~= 0 and res.code ~= nil, H.describe(res))
    assert.is_true(res.stderr ~= "", H.describe(res))
    H.assert_clean(res)
  end)

  it("--check compiles a good script and runs nothing", function()
    local marker = H.tmpdir() .. "/ran-marker"
    local path = H.write_script(string.format([==[
      local f = io.open(%q, "w"); f:write("ran"); f:close()
      print("RAN")
      local mw = require "moonwire"
      mw.Timer.add(0.01, function() print("TIMER") end)
    ]==], marker), "good.lua", true)
    local res = cli { "--check", path }
    H.assert_exit(res, 0)
    assert.equal("", res.stdout)
    assert.is_nil(io.open(marker), "--check ran the script")
  end)

  it("--check reports a syntax error and exits 1", function()
    local src = "local a = 1\nlocal b = (a +\nprint(b\n"
    local path = H.write_script(src, "bad.lua", true)
    local res = cli { "--check", path }
    H.assert_exit(res, 1)
    assert.equal("", res.stdout)
    local _, msg = load(src, "@bad.lua")
    assert.is_true(res.stderr:find(msg, 1, true) ~= nil, "expected " .. msg .. " in\n" .. res.stderr)
  end)

  it("-e runs a chunk", function()
    local res = cli { "-e", "print(1 + 1)" }
    H.assert_exit(res, 0)
    assert.same({ "2" }, res.lines)
  end)

  it("-e runs the loop after the chunk", function()
    local res = cli { "-e", [[io.stdout:setvbuf("line")
      local mw = require "moonwire"
      mw.Timer.add(0.02, function(x) print("TICK", x) end, { "once" }, false)
      print("CHUNK DONE")]] }
    H.assert_exit(res, 0)
    assert.same({ "CHUNK DONE", "TICK\tonce" }, res.lines)
  end)

  it("-e with an error exits 1 with the message", function()
    local res = cli { "-e", 'error("chunk failed")' }
    H.assert_exit(res, 1)
    assert.is_true(res.stderr:find("chunk failed", 1, true) ~= nil, res.stderr)
    local syn = cli { "-e", "local = 1" }
    H.assert_exit(syn, 1)
    assert.is_true(syn.stderr:find("expected near '='", 1, true) ~= nil, syn.stderr)
  end)

  it("arg holds the script name at 0, the arguments from 1, the interpreter below 0; ... too",
    function()
      local src = [==[
        print("ARG0", arg[0])
        print("N", #arg, select("#", ...))
        for i = 1, #arg do print("ARG", i, "[" .. arg[i] .. "]", (select(i, ...))) end
        print("NEG1", arg[-1])
        print("NEG2", arg[-2])
      ]==]
      local path = H.write_script(src, "args.lua")
      local res = H.run(nil, { "a", "b c", "" }, { path = path })
      H.assert_exit(res, 0)
      assert.same({
        "ARG0\t" .. path,
        "N\t3\t3",
        "ARG\t1\t[a]\ta",
        "ARG\t2\t[b c]\tb c",
        "ARG\t3\t[]\t",
        "NEG1\t" .. H.bin,
        "NEG2\tnil",
      }, res.lines)
    end)

  it("options before the script take negative indices, as lua(1) does; -e runs first", function()
    local path = H.write_script([==[
      print("X", x)
      print("ARGS", arg[-3], arg[-2], arg[-1], arg[0] == SCRIPT, arg[1], #arg)
    ]==], "after_e.lua")
    local res = H.run(nil, nil, { argv = { "-e", "x = 42", path, "one" } })
    H.assert_exit(res, 0)
    assert.same({ "X\t42", "ARGS\t" .. H.bin .. "\t-e\tx = 42\tfalse\tone\t1" }, res.lines)
  end)

  it("arg with -e and no script: arg[0] is the interpreter, as lua(1) does", function()
    local code = 'print(arg[0], arg[1], arg[2], #arg)'
    local res = cli { "-e", code }
    H.assert_exit(res, 0)
    assert.same({ H.bin .. "\t-e\t" .. code .. "\t2" }, res.lines)
  end)

  it("the script's directory comes first in package.path; Debian's Lua modules load", function()
    local dir = H.tmpdir()
    local f = assert(io.open(dir .. "/sibling_mod.lua", "w"))
    f:write('return { where = "beside the script" }\n')
    f:close()
    local path = H.write_script([==[
      print("SIBLING", require("sibling_mod").where)
      print("LFS", type(require("lfs").currentdir))
    ]==], "uses_modules.lua")
    local res = H.run(nil, {}, { path = path, cwd = "/" })
    H.assert_exit(res, 0)
    assert.same({ "SIBLING\tbeside the script", "LFS\tfunction" }, res.lines)
  end)

  it("mw.now() is a monotonic clock in float seconds", function()
    local res = H.run([==[
      local mw = require "moonwire"
      local a = mw.now()
      mw.Timer.add(0.05, function()
        local b = mw.now()
        print("NOW", math.type(a), b > a, b - a >= 0.045 and b - a < 5)
      end, nil, false)
    ]==])
    H.assert_exit(res, 0)
    assert.same({ "NOW\tfloat\ttrue\ttrue" }, res.lines)
  end)
end)
