-- json.lua: which Debian JSON package a bot should use under Lua 5.4 (issue 15), measured.
--   build/moonwire scripts/bench/json.lua [seconds [rounds]]     (or: lua5.4 scripts/bench/json.lua)
-- For a 200-byte market-data message (a trade) and a 2 KiB one (an order book), it times
-- decode and encode per message with each installed candidate: lua-cjson, lua-cjson with
-- the integer fix-up the README shows, lua-dkjson pure Lua, lua-dkjson on lua-lpeg. Then it
-- checks what each keeps: integers, floats, null, [] against {}, errors on bad input.
-- A candidate that is not installed is left out (scripts/bootstrap.sh installs the chosen
-- one, lua-dkjson with lua-lpeg; `apt-get install lua-cjson` to compare with lua-cjson).
-- Bounded: each case runs at most MAX_ITER messages and about `seconds` of CPU time
-- (default 0.1 s) in each of 5 rounds (default), the best round kept; about 10 s in all.
-- Time is CPU time (os.clock): another process on a shared core slows it less than wall time.
local seconds = tonumber(arg and arg[1]) or 0.1
local ROUNDS = math.tointeger(tonumber(arg and arg[2])) or 5
local MAX_ITER = 200000

-- The messages ---------------------------------------------------------------------

local TRADE = '{"type":"trade","symbol":"BTC-USD","trade_id":48213901,"seq":1938274650,'
  .. '"price":43250.12,"size":0.0153,"side":"buy","maker":false,"ts":1733220000123,'
  .. '"tags":["spot"],"fee":null,"venue":{"id":7,"mic":"XDEM"}}'

local function book_message()
  local bids, asks = {}, {}
  for i = 1, 47 do
    bids[i] = ("[%.2f,%.4f,%d]"):format(43250.12 - i * 0.5, 0.01 * i + 0.0034, i)
    asks[i] = ("[%.2f,%.4f,%d]"):format(43250.62 + i * 0.5, 0.02 * i + 0.0071, i)
  end
  return '{"type":"book","symbol":"BTC-USD","seq":1938274651,"ts":1733220000125,'
    .. '"bids":[' .. table.concat(bids, ",") .. '],"asks":[' .. table.concat(asks, ",") .. ']}'
end
local BOOK = book_message()

-- The candidates -------------------------------------------------------------------

-- lua-cjson 2.1.0 reads every number as a float; this restores the integers that a
-- float still holds exactly (|n| <= 2^53), in place. Larger ones are already lost.
local function cjson_ints(v)
  if type(v) == "table" then
    for k, x in pairs(v) do
      if type(x) == "number" then
        v[k] = math.tointeger(x) or x
      elseif type(x) == "table" then
        cjson_ints(x)
      end
    end
  end
  return v
end

local candidates = {}
local ok_c, cjson = pcall(require, "cjson")
if ok_c then
  candidates[#candidates + 1] = { name = "lua-cjson " .. cjson._VERSION, mod = cjson,
    decode = cjson.decode, encode = cjson.encode, null = cjson.null }
  candidates[#candidates + 1] = { name = "lua-cjson + integer fix-up", mod = cjson,
    decode = function(s) return cjson_ints(cjson.decode(s)) end, encode = cjson.encode,
    null = cjson.null }
end
local ok_d, dkjson = pcall(require, "dkjson")
if ok_d then
  candidates[#candidates + 1] = { name = dkjson.version .. " (pure Lua)", mod = dkjson,
    decode = dkjson.decode, encode = dkjson.encode, null = dkjson.null }
  local ok_l, dkl = pcall(dkjson.use_lpeg)
  if ok_l then
    candidates[#candidates + 1] = { name = dkjson.version .. " + lua-lpeg", mod = dkl,
      decode = dkl.decode, encode = dkl.encode, null = dkl.null }
  end
end
if #candidates == 0 then
  io.stderr:write("json.lua: neither cjson nor dkjson loads; apt-get install lua-cjson lua-dkjson\n")
  os.exit(1)
end

-- Timing ---------------------------------------------------------------------------

-- Microseconds per call of fn(a) in one round: as many calls as fit in `seconds` of CPU
-- time (at most MAX_ITER).
local function per_call(fn, a)
  local n, t0, batch = 0, os.clock(), 64
  local t
  repeat
    for _ = 1, batch do fn(a) end
    n = n + batch
    t = os.clock() - t0
  until t >= seconds or n >= MAX_ITER
  return t / n * 1e6
end

-- Rounds go over every candidate in turn, and each figure is the best of its rounds: a
-- burst of load from another process on the machine then spoils one round, not a row.
local rows = {}
for i, c in ipairs(candidates) do rows[i] = { name = c.name } end
for _ = 1, ROUNDS do
  for i, c in ipairs(candidates) do
    local row = rows[i]
    for _, m in ipairs { { "trade", TRADE }, { "book", BOOK } } do
      local label, text = m[1], m[2]
      local value = c.decode(text)
      local d, e = per_call(c.decode, text), per_call(c.encode, value)
      row[label .. "_dec"] = math.min(row[label .. "_dec"] or math.huge, d)
      row[label .. "_enc"] = math.min(row[label .. "_enc"] or math.huge, e)
    end
    collectgarbage()
  end
end

print(("%s; trade %d bytes, book %d bytes; best of %d rounds of %g s CPU (os.clock)")
  :format(_VERSION, #TRADE, #BOOK, ROUNDS, seconds))
print(("%-28s %12s %12s %12s %12s"):format("us per message", "trade dec", "trade enc",
  "book dec", "book enc"))
for _, r in ipairs(rows) do
  print(("%-28s %12.2f %12.2f %12.2f %12.2f"):format(r.name, r.trade_dec, r.trade_enc,
    r.book_dec, r.book_enc))
end
local base = rows[1]
print(("%-28s %12s %12s %12s %12s"):format("ratio to " .. base.name:match("^%S+"),
  "", "", "", ""))
for _, r in ipairs(rows) do
  print(("%-28s %11.1fx %11.1fx %11.1fx %11.1fx"):format(r.name, r.trade_dec / base.trade_dec,
    r.trade_enc / base.trade_enc, r.book_dec / base.book_dec, r.book_enc / base.book_enc))
end

-- What each keeps ------------------------------------------------------------------

local function try(fn, ...)
  local res = table.pack(pcall(fn, ...))
  if not res[1] then return "raises: " .. tostring(res[2]) end
  local out = {}
  for i = 2, res.n do out[#out + 1] = tostring(res[i]) end
  return "returns " .. table.concat(out, ", ")
end

print()
for _, c in ipairs(candidates) do
  local v = c.decode('{"n":1,"big":9007199254740993,"f":1.5,"e":1e3,"nul":null,"arr":[],"obj":{}}')
  print(c.name .. ":")
  print(("  \"n\":1 -> %s %s; 2^53+1 -> %s; 1.5 -> %s; 1e3 -> %s"):format(
    math.type(v.n), tostring(v.n), tostring(v.big), math.type(v.f), math.type(v.e)))
  print(("  null -> %s; encode {} -> %s; [] decoded and encoded again -> %s; {a=null} -> %s")
    :format(v.nul == nil and "nil (key absent)" or tostring(v.nul), c.encode({}),
      c.encode(v.arr), c.encode({ a = c.null })))
  print(("  encode 0.1+0.2 -> %s; encode 123456789012345 -> %s; math.maxinteger -> %s"):format(
    c.encode({ 0.1 + 0.2 }), c.encode({ 123456789012345 }), c.encode({ math.maxinteger })))
  print(("  decode '{\"a\":' %s"):format(try(c.decode, '{"a":')))
  print(("  decode '{\"a\":1} x' %s"):format(try(c.decode, '{"a":1} x')))
end
