-- Issue 17 part 5, metrics: conn:stats(), mw.stats(), mw.histogram(), the Prometheus
-- text of --metrics FILE (parsed by the real parser of Debian's
-- python3-prometheus-client), the blob merge of mw.metricsRender, and --stats N.
-- Against a live server (Python `websockets`, spec/servers/ws_py_peer.py /echo),
-- loopback only.
local H = require "spec.support.helper"

local function echo() local p = H.peer("ws_py_peer.py") p.url = "ws://127.0.0.1:" .. p.port .. "/echo" return p end

-- Parses a Prometheus text file with prometheus_client's parser: returns
-- samples["name{label=v,...}"] = value (labels sorted), and the families' types.
local PARSE = [[
import sys
from prometheus_client.parser import text_string_to_metric_families
for fam in text_string_to_metric_families(open(sys.argv[1]).read()):
    print("TYPE", fam.name, fam.type)
    for s in fam.samples:
        labels = ",".join("%s=%s" % (k, v) for k, v in sorted(s.labels.items()))
        print("S", s.name + "{" + labels + "}", repr(float(s.value)))
]]
local function parse(path)
  local py = H.tmpdir() .. "/parse_prom.py"
  local f = assert(io.open(py, "w")); f:write(PARSE); f:close()
  local p = assert(io.popen(H.python .. " " .. py .. " " .. path .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  assert(ok, "the Prometheus parser refused " .. path .. ":\n" .. out)
  local samples, types = {}, {}
  for line in out:gmatch("[^\n]+") do
    local n, t = line:match("^TYPE (%S+) (%S+)$")
    if n then types[n] = t end
    local k, v = line:match("^S (%S+) (%S+)$")
    if k then samples[k] = tonumber(v) end
  end
  return samples, types
end

-- Waits until the file parses with every sample of `want` at its value; returns whether it
-- did, and the last samples read.
local function file_shows(path, want)
  local s
  local ok = H.run_until(function()
    local f = io.open(path)
    if not f then return false end
    f:close()
    s = parse(path)
    for k, v in pairs(want) do if s[k] ~= v then return false end end
    return true
  end, 10 * H.slow)
  return ok, s
end

-- Three connections (two named "bots"), five echoed messages each and at least one
-- keepalive pong, then each closes; the named histogram holds 1..10000 ms.
local SCRIPT = [[
local mw = require "moonwire"
local url = arg[1]
local h = mw.histogram { name = "latency" }
assert(mw.histogram { name = "latency" } == h, "the same name gives the same histogram")
for i = 1, 10000 do h:record(i / 1000) end
local left = 3
for i = 1, 3 do
  local c = mw.AsyncTcpConnection.new(url, { name = i < 3 and "bots" or nil })
  c.websocketPingInterval = 0.05
  local got, pong = 0, false
  c.onWebSocketConnect = function(c) for k = 1, 5 do c:send("hello " .. k) end end
  local function maybe_close(c) if got == 5 and pong then c:close() end end
  c.onWebSocketPong = function(c) if not pong then pong = true; maybe_close(c) end end
  c.onMessage = function(c) got = got + 1; maybe_close(c) end
  c.onClose = function(c)
    local s = c:stats()
    print(("CONN %d connects=%d in=%d out=%d bin=%d rtt=%s srtt=%s code1000=%s up=%s"):format(i,
      s.connects, s.messagesReceived, s.messagesSent, s.bytesReceived, tostring(s.pingRtt),
      tostring(s.pingRttSmoothed), tostring(s.closeCodes[1000]), tostring(s.connectedSeconds > 0)))
    left = left - 1
    if left == 0 then
      local t = mw.stats()
      print(("TOTAL conns=%d connects=%d in=%d out=%d bots_in=%d"):format(t.connections, t.connects,
        t.messagesReceived, t.messagesSent, t.byName.bots.messagesReceived))
    end
  end
  c:connect()
end
]]

describe("metrics", function()
  after_each(H.cleanup)

  it("counts per connection and per process, and --metrics FILE parses as Prometheus text", function()
    local p = echo()
    local file = H.tmpdir() .. "/moonwire.prom"
    os.remove(file)
    local res = H.run(SCRIPT, { p.url }, { options = { "--metrics", file, "--metrics-interval", "0.1", "--stats", "0.05" } })
    H.assert_clean(res)
    assert.equal(0, res.code, H.describe(res))
    assert.equal(3, H.count(res.lines, "^CONN %d connects=1 in=5 out=5 bin=%d+ rtt=[%d.e-]+ srtt=[%d.e-]+ code1000=1 up=true$"), H.describe(res))
    assert.truthy(H.grep(res.lines, "^TOTAL conns=%d connects=3 in=15 out=15 bots_in=10$")[1], H.describe(res))
    -- --stats: one line per tick on stderr
    assert.truthy(res.stderr:find("moonwire: %d+ conns, %d+ msg/s in, %d+ msg/s out, [%d.]+ [kMG]?B/s in"), res.stderr)
    local s, types = parse(file)
    assert.equal("gauge", types.moonwire_connections)
    assert.equal("counter", types.moonwire_messages_received)   -- the parser strips _total
    assert.equal("summary", types.moonwire_histogram)
    assert.equal(0, s["moonwire_connections{}"])                -- written at exit: all closed
    assert.equal(3, s["moonwire_connects_total{}"])
    assert.equal(2, s["moonwire_connects_total{name=bots}"])
    assert.equal(15, s["moonwire_messages_received_total{}"])
    assert.equal(10, s["moonwire_messages_sent_total{name=bots}"])
    assert.equal(3, s["moonwire_close_codes_total{code=1000}"])
    assert.equal(2, s["moonwire_close_codes_total{code=1000,name=bots}"])
    assert.is_true(s["moonwire_bytes_received_total{}"] > 15 * 7)
    assert.equal(10000, s["moonwire_histogram_count{histogram=latency}"])
    assert.is_true(math.abs(s["moonwire_histogram{histogram=latency,quantile=0.99}"] - 9.9) < 9.9 * 0.008)
    assert.is_true(math.abs(s["moonwire_histogram{histogram=latency,quantile=0.5}"] - 5) < 5 * 0.008)
    -- atomic: no temporary file left next to it
    local leftovers = io.popen("ls " .. H.tmpdir() .. " | grep -c 'moonwire.prom.*tmp'"):read("a")
    assert.equal("0", leftovers:match("%d+"))
  end)

  it("writes while running, with the open connections as the gauge", function()
    local p = echo()
    local file = H.tmpdir() .. "/running.prom"
    os.remove(file)
    local proc = H.start([[
local mw = require "moonwire"
local c = mw.AsyncTcpConnection.new(arg[1], { name = "feed" })
c.onWebSocketConnect = function() print("OPEN") end
c:connect()
]], { p.url }, { options = { "--metrics", file, "--metrics-interval", "0.05" } })
    proc:wait_line("^OPEN$", 10 * H.slow)
    local _, s = file_shows(file, { ["moonwire_connections{name=feed}"] = 1 })
    assert.equal(1, s["moonwire_connections{}"])
    assert.equal(1, s["moonwire_connects_total{name=feed}"])
    proc:kill("sigterm")
    local res = H.result(proc, 10)
    H.assert_clean(res)
    assert.equal(0, res.code, H.describe(res))
  end)

  it("worker.count = 2: the parent writes the sum of the workers', a killed one's counts kept", function()
    local p = echo()
    local file = H.tmpdir() .. "/workers.prom"
    os.remove(file)
    local proc = H.start([[
local mw = require "moonwire"
local function pid()
  local f = io.open("/proc/self/stat"); local s = f:read("l"); f:close()
  return s:match("^(%d+)")
end
local w = mw.Worker.new()
w.count = 2
w.onWorkerStart = function(w)
  local c = mw.AsyncTcpConnection.new(arg[1], { name = "w" .. w.id })
  local n, got = 3 + 2 * w.id, 0
  c.onWebSocketConnect = function(c) for k = 1, n do c:send("m" .. k) end end
  c.onMessage = function() got = got + 1; if got == n then print("DONE " .. w.id .. " " .. pid()) end end
  c:connect()
end
mw.Worker.runAll()
]], { p.url }, { options = { "--metrics", file, "--metrics-interval", "0.05" } })
    local function done(id, n)
      assert.is_true(H.run_until(function() return #proc:grep("^DONE " .. id .. " ") >= n end, 10 * H.slow),
        proc:describe())
    end
    done(0, 1)
    done(1, 1)
    local pid1 = proc:grep("^DONE 1 ")[1]:match("(%d+)$")
    -- both workers in one file: 3 + 5 messages, two open connections, each name its series
    local ok, s = file_shows(file, { ["moonwire_messages_received_total{}"] = 8, ["moonwire_connections{}"] = 2 })
    assert.is_true(ok, "the file while both run")
    assert.equal(3, s["moonwire_messages_received_total{name=w0}"])
    assert.equal(5, s["moonwire_messages_sent_total{name=w1}"])
    assert.equal(2, s["moonwire_connects_total{}"])
    -- worker 1 killed and restarted: its first life's counts stay, its open connection does not
    require("luv").kill(tonumber(pid1), "sigkill")
    done(1, 2)
    assert.is_true((file_shows(file, { ["moonwire_messages_received_total{}"] = 13, ["moonwire_connects_total{}"] = 3,
      ["moonwire_connections{}"] = 2 })), "the file after the restart")
    proc:kill("sigterm")
    local res = H.result(proc, 20)
    assert.equal(1, res.code, H.describe(res))   -- a worker failed (the kill)
    s = parse(file)
    assert.equal(0, s["moonwire_connections{}"])   -- the last write: every worker ended
    assert.equal(13, s["moonwire_messages_received_total{}"])
    assert.equal(10, s["moonwire_messages_received_total{name=w1}"])
  end)

  it("a histogram reports percentiles within its relative error, and merges", function()
    local res = H.run([[
local mw = require "moonwire"
local a, b = mw.histogram(), mw.histogram()
assert(a:count() == 0 and a:percentile(50) == nil and a:min() == nil)
for i = 1, 100000 do a:record(i * 0.01) end
for _, p in ipairs { 50, 99, 99.9 } do
  local want = p / 100 * 1000
  print(("P%s %s"):format(p, tostring(math.abs(a:percentile(p) - want) / want < 0.008)))
end
b:record(5000, 3)
a:merge(b)
print("COUNT", a:count(), a:max(), a:min())
print("BAD", pcall(a.record, a, -1))
print("BADP", pcall(a.percentile, a, 101))
print(tostring(a))
]], {})
    assert.equal(0, res.code, H.describe(res))
    assert.same({ "P50 true", "P99 true", "P99.9 true", "COUNT\t100003\t5000.0\t0.01" },
      { res.lines[1], res.lines[2], res.lines[3], res.lines[4] })
    assert.truthy(res.lines[5]:find("^BAD\tfalse\t.*numbers >= 0"))
    assert.truthy(res.lines[6]:find("^BADP\tfalse\t.*0 to 100"))
    assert.equal("Histogram (100003 values)", res.lines[7])
  end)

  it("mw.metricsRender sums the blobs of several processes", function()
    local res = H.run([[
local mw = require "moonwire"
local h = mw.histogram { name = "rt" }
for i = 1, 10 do h:record(i) end
local blob = mw.metricsBlob()
-- as a parent would: the same blob from three workers
local text = mw.metricsRender(blob, blob, blob)
print(text:match("moonwire_histogram_count{histogram=\"rt\"} (%d+)"))
print(pcall(mw.metricsRender, blob, "junk"))
]], {})
    assert.equal(0, res.code, H.describe(res))
    assert.equal("30", res.lines[1])
    assert.truthy(res.lines[2]:find("^false\t.*not a metrics blob"))
  end)

  it("reports a --metrics FILE it cannot write, and goes on", function()
    local res = H.run("print('RAN')", {}, { options = { "--metrics", "/nonexistent-dir/x.prom" } })
    assert.equal(0, res.code, H.describe(res))
    -- a script that does not load moonwire has no counters: nothing written, no error
    assert.same({ "RAN" }, res.lines)
    res = H.run("require 'moonwire'; print('RAN')", {}, { options = { "--metrics", "/nonexistent-dir/x.prom" } })
    assert.equal(0, res.code, H.describe(res))
    assert.truthy(res.stderr:find("moonwire: %-%-metrics: metrics file /nonexistent%-dir/x.prom: cannot create"), res.stderr)
  end)

  it("refuses a bad interval", function()
    local res = H.run("print(1)", {}, { options = { "--stats", "zero" } })
    assert.equal(2, res.code)
    assert.truthy(res.stderr:find("%-%-stats needs a number of seconds > 0, got 'zero'"), res.stderr)
  end)
end)
