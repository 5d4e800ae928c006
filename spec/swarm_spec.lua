-- Issue 17 part 6: examples/kubernetes/swarm.lua, run as one pod of an Indexed Job
-- would run it (JOB_COMPLETION_INDEX and SHARD_COUNT in the environment), against
-- real local echo servers (spec/servers/ws_py_peer.py, loopback only): it takes its
-- shard of the targets, and only those, and numbers its bots from its block.
local H = require "spec.support.helper"

local SCRIPT = H.src .. "/examples/kubernetes/swarm.lua"

describe("examples/kubernetes swarm.lua", function()
  after_each(H.cleanup)

  local function servers(n)
    local ps, lines = {}, {}
    for i = 1, n do
      ps[i] = H.peer("ws_py_peer.py")
      ps[i].url = "ws://127.0.0.1:" .. ps[i].port .. "/echo"
      lines[i] = ps[i].url
    end
    local f = assert(io.open(H.tmpdir() .. "/targets.txt", "w"))
    f:write("# targets\n", table.concat(lines, "\n"), "\n")
    f:close()
    return ps, H.tmpdir() .. "/targets.txt"
  end

  for _, case in ipairs { { index = 1, shards = 3, picks = { 2, 5 } }, { index = 0, shards = 2, picks = { 1, 3, 5 } } } do
    it(("index %d of %d takes targets %s"):format(case.index, case.shards, table.concat(case.picks, ",")), function()
      local ps, targets = servers(5)
      local res = H.run(nil, nil, {
        argv = { SCRIPT, targets },
        env = { JOB_COMPLETION_INDEX = tostring(case.index), SHARD_COUNT = tostring(case.shards), BOTS = "2", DURATION = "1" },
        timeout = 15 * H.slow,
      })
      H.assert_clean(res)
      assert.equal(0, res.code, H.describe(res))
      local want = {}
      for _, i in ipairs(case.picks) do want[#want + 1] = ps[i].url end
      local per_shard = math.ceil(5 / case.shards) * 2
      assert.equal(("SHARD %d/%d targets %s first_id %d"):format(case.index, case.shards,
        table.concat(want, ","), case.index * per_shard), res.lines[1])
      -- every bot of the shard got its echo from its own target, ids in the shard's block
      local id = case.index * per_shard
      for _, url in ipairs(want) do
        for _ = 1, 2 do
          assert.equal(1, H.count(res.lines, "^ECHO " .. url:gsub("%p", "%%%0") .. " bot " .. id .. " hello from bot " .. id .. "$"), H.describe(res))
          id = id + 1
        end
      end
      assert.equal(#want * 2, H.count(res.lines, "^ECHO "))
      assert.truthy(H.grep(res.lines, "^DONE echoes " .. #want * 2 .. " p99 ")[1], H.describe(res))
      -- the servers of other shards saw no connection
      for i, p in ipairs(ps) do
        p:close_stdin()
        p:wait(5)
        local connects = H.count(p.lines, "^CONNECT ")
        local picked = false
        for _, k in ipairs(case.picks) do picked = picked or k == i end
        assert.equal(picked and 2 or 0, connects, "server " .. i)
      end
    end)
  end

  it("refuses an index outside SHARD_COUNT", function()
    local _, targets = servers(1)
    local res = H.run(nil, nil, { argv = { SCRIPT, targets }, env = { JOB_COMPLETION_INDEX = "3", SHARD_COUNT = "2" } })
    assert.equal(1, res.code)
    assert.truthy(res.stderr:find("JOB_COMPLETION_INDEX 3 is outside SHARD_COUNT 2"), res.stderr)
  end)
end)
