-- Issue 15, JSON: what README "JSON" promises of lua-dkjson (on lua-lpeg) inside the
-- moonwire binary: integers stay integers both ways, null, [] against {}, the errors on bad
-- input, floats written with 14 digits; examples/json_bot.lua against a toy exchange on
-- Python's json (spec/servers/ws_json_peer.py); and scripts/bench/json.lua still runs.
local H = require "spec.support.helper"

-- Runs Lua source in moonwire (json is dkjson on lpeg, dk the pure-Lua one, show(v) a
-- value with its math.type) and returns its stdout lines; it must exit 0, stderr empty.
local PRELUDE = [[
local dk = require "dkjson"
local json = dk.use_lpeg()
local function show(v)
  if v == json.null then return "json.null" end
  return tostring(v) .. " " .. (math.type(v) or type(v))
end
]]
local function run(source)
  local res = H.run(PRELUDE .. source)
  H.assert_exit(res, 0)
  assert.equal("", res.stderr)
  return res.lines
end

describe("JSON with lua-dkjson inside moonwire (issue 15)", function()
  after_each(H.cleanup)

  it("loads dkjson on lpeg from the system's Lua 5.4 paths", function()
    local res = H.run(PRELUDE .. 'print(json.version, json.using_lpeg, dk.using_lpeg or false)')
    assert.equal("", res.stderr, "lua-dkjson and lua-lpeg (scripts/bootstrap.sh installs them)")
    assert.same({ "dkjson 2.6\ttrue\tfalse" }, res.lines)
  end)

  it("keeps integers integers and floats floats, both ways, with and without lpeg", function()
    local lines = run [[
      local text = '{"n":1,"neg":-7,"zero":0,"big":9007199254740993,"max":9223372036854775807,'
        .. '"id":123456789012345,"f":1.5,"one":1.0,"e":1e3,"over":9223372036854775808}'
      for _, j in ipairs { json, dk } do
        local v = assert(j.decode(text))
        for _, k in ipairs { "n", "neg", "zero", "big", "max", "id", "f", "one", "e", "over" } do
          print(k .. " " .. show(v[k]))
        end
        print("ENC " .. j.encode({ v.n, v.neg, v.big, v.max, v.id, v.f, v.one, v.e }))
      end
    ]]
    local one = { "n 1 integer", "neg -7 integer", "zero 0 integer", "big 9007199254740993 integer",
      "max 9223372036854775807 integer", "id 123456789012345 integer", "f 1.5 float", "one 1.0 float",
      "e 1000.0 float", "over 9.2233720368548e+18 float",
      "ENC [1,-7,9007199254740993,9223372036854775807,123456789012345,1.5,1.0,1000.0]" }
    local both = {}
    table.move(one, 1, #one, 1, both)
    table.move(one, 1, #one, #one + 1, both)
    assert.same(both, lines)
  end)

  it("writes floats with 14 significant digits (Lua's %.14g), as tostring does", function()
    assert.same({ "[0.3,43250.123456789,1.2345678901235e+14,1e+300]" }, run [[
      print(json.encode({ 0.1 + 0.2, 43250.123456789, 123456789012345.5, 1e300 }))
    ]])
  end)

  it("null: a missing key by default, json.null with it as the third argument; json.null and NaN encode as null", function()
    assert.same({
      "default a=nil n=1 2=nil 3=3",
      "nullval a=json.null n=1 #=3 2=json.null",
      'ENC {"a":null}', "ENC [1,null,3]", "ENC [1,null,3]", "ENC [null,null,null]", "ENC {}",
    }, run [[
      local v = assert(json.decode('{"a":null,"n":1,"l":[1,null,3]}'))
      print(("default a=%s n=%s 2=%s 3=%s"):format(tostring(v.a), v.n, tostring(v.l[2]), v.l[3]))
      local w = assert(json.decode('{"a":null,"n":1,"l":[1,null,3]}', 1, json.null))
      print(("nullval a=%s n=%s #=%d 2=%s"):format(show(w.a), v.n, #w.l, show(w.l[2])))
      print("ENC " .. json.encode({ a = json.null }))
      print("ENC " .. json.encode(v.l))          -- the hole is kept: the largest index is the length
      print("ENC " .. json.encode(w.l))
      print("ENC " .. json.encode({ 0 / 0, math.huge, -math.huge }))
      print("ENC " .. json.encode(setmetatable({ a = nil }, { __jsontype = "object" })))
    ]])
  end)

  it("empty tables: {} encodes as [], __jsontype 'object' gives {}, and decoded [] and {} keep their kind", function()
    assert.same({ "[]", "{}", '{"a":[],"o":{}}', '{"a":[],"o":{}}', "array object" }, run [[
      print(json.encode({}))
      print(json.encode(setmetatable({}, { __jsontype = "object" })))
      -- keyorder: dkjson writes keys in table order, which Lua 5.4 varies from run to run
      local order = { keyorder = { "a", "o" } }
      print(json.encode({ a = {}, o = setmetatable({}, { __jsontype = "object" }) }, order))
      local v = assert(json.decode('{"a":[],"o":{}}'))
      print(json.encode(v, order))
      print(getmetatable(v.a).__jsontype .. " " .. getmetatable(v.o).__jsontype)
    ]])
  end)

  it("bad input: decode returns nil, position, message (it raises only on a non-string); text after the value is not an error", function()
    assert.same({
      "nil 6 value expected at line 1, column 6",
      "nil 1 value expected at line 1, column 1",
      "nil 6 colon expected at line 1, column 6",
      "nil 1 value expected at line 1, column 1",
      "table 8",
      "pure nil 6 unterminated object at line 1, column 1",
      "raises bad argument #2 to 'pegmatch' (string expected, got nil)",
    }, run [[
      for _, text in ipairs { '{"a":', 'not json {', '{"a" 1}', '' } do
        local v, pos, msg = json.decode(text)
        print(tostring(v) .. " " .. pos .. " " .. msg)
      end
      local v, pos = json.decode('{"a":1} x')
      print(type(v) .. " " .. pos)
      print("pure " .. table.concat({ tostring(dk.decode('{"a":')), select(2, dk.decode('{"a":')) }, " "))
      local ok, err = pcall(json.decode, nil)
      print((ok and "returns " or "raises ") .. tostring(err):gsub("^.-:%d+: ", ""))
    ]])
  end)

  it("encode raises on what JSON cannot say: a function, a reference cycle", function()
    assert.same({
      "false\ttype 'function' is not supported by JSON.",
      "false\treference cycle",
    }, run [[
      print(pcall(json.encode, { f = print }))
      local t = {}
      t.self = t
      print(pcall(json.encode, t))
    ]])
  end)

  it("traps: a table whose only key is a number n is an array of that length; encode(decode(s)) raises", function()
    assert.same({
      "[null,null]", "[null,null]", "[null,]", '{"m":1,"n":2}', '{"n":"x"}',
      "false attempt to index a number value (local 'state')", '{"a":1}',
    }, run [[
      print(json.encode({ n = 2 }))
      print(json.encode((json.decode('{"n":2}'))))
      print(json.encode({ n = 1.5 }))                 -- not even JSON
      print(json.encode((json.decode('{"n":2,"m":1}')), { keyorder = { "m", "n" } }))
      print(json.encode({ n = "x" }))
      local ok, err = pcall(function() return json.encode(json.decode('{"a":1}')) end)
      print(tostring(ok) .. " " .. err:gsub("^.-:%d+: ", ""))
      print(json.encode((json.decode('{"a":1}'))))
    ]])
  end)

  it("examples/json_bot.lua subscribes, prints trades with integer ids, answers the ping, skips bad JSON and text after JSON, unsubscribes and closes", function()
    local srv = H.peer("ws_json_peer.py")
    local url = "ws://127.0.0.1:" .. srv.port .. "/feed"
    local res = H.run(nil, { url, "trades", "3" }, { path = H.src .. "/examples/json_bot.lua" })
    H.assert_exit(res, 0)
    assert.equal("", res.stderr)
    assert.same({
      "connected to " .. url,
      "subscribed to trades (request 1)",
      "trade 9007199254740993 (integer): buy 0.25 @ 43250.75, fee null, 0 tags",
      "ping 77: pong",
      "not JSON (value expected at line 1, column 1): not json {",
      'not JSON (text after the JSON value at byte 22): {"op":"ping","id":78} x',
      "trade 9007199254740994 (integer): sell 0.25 @ 43251.0, fee null, 0 tags",
      "trade 9007199254740995 (integer): buy 0.25 @ 43251.25, fee null, 1 tags",
      "unsubscribing after 3 trades",
      "closed",
    }, res.lines)
    srv:wait_line("^CONNECT /feed$")
    -- what Python's json read: integers as int, null as None, [] as a list
    assert.equal('GOT {"channel":"trades","id":1,"op":"subscribe"}', (srv:wait_line("^GOT ")))
    assert.equal("TYPES channel=str id=int op=str", (srv:wait_line("^TYPES ")))
    assert.equal('GOT {"id":77,"op":"pong"}', (srv:wait_line("^GOT ")))
    assert.equal("TYPES id=int op=str", (srv:wait_line("^TYPES ")))
    assert.equal('GOT {"channel":"trades","filters":[],"last_trade_id":9007199254740995,'
      .. '"op":"unsubscribe","reason":null}', (srv:wait_line("^GOT ")))
    assert.equal("TYPES channel=str filters=list last_trade_id=int op=str reason=NoneType",
      (srv:wait_line("^TYPES ")))
    srv:wait_line("^CLOSE 1000 done$")
    assert.same({}, srv:grep("^BAD"))
  end)

  it("scripts/bench/json.lua runs (one tiny round) and measures dkjson with and without lpeg", function()
    local res = H.run(nil, { "0.001", "1" }, { path = H.src .. "/scripts/bench/json.lua", timeout = 30 * H.slow })
    H.assert_exit(res, 0)
    assert.equal("", res.stderr)
    assert.truthy(res.stdout:find("trade 206 bytes, book 2044 bytes", 1, true), res.stdout)
    for _, row in ipairs { "dkjson 2.6 %(pure Lua%)", "dkjson 2.6 %+ lua%-lpeg" } do
      assert.equal(2, H.count(res.lines, "^" .. row .. "%s+[%d.]+x?%s+[%d.]+x?%s+[%d.]+x?%s+[%d.]+x?$"),
        res.stdout)
    end
    assert.equal(2, H.count(res.lines, '^  "n":1 %-> integer 1; 2%^53%+1 %-> 9007199254740993;'), res.stdout)
  end)
end)
