-- moonwire.worker: Workerman's Worker for a client host: onWorkerStart runs
-- when the loop starts, onWorkerStop on stopAll or SIGINT/SIGTERM,
-- onWorkerReload after a hot reload.
return function(core)
  local Worker = {}
  Worker.__index = Worker
  local workers = {}
  local pending       -- workers made by a reload under way

  function Worker.new()
    local w = setmetatable({ count = 1, id = 0 }, Worker)
    local list = pending or workers
    list[#list + 1] = w
    return w
  end

  core.setStopHook(function()
    for _, w in ipairs(workers) do
      if w.onWorkerStop then w.onWorkerStop(w) end
    end
  end)

  -- onWorkerStart declares connections and timers, as the top level does.
  local function start(w)
    if not w.onWorkerStart then return end
    core.setDeclaring(true)
    local ok, err = xpcall(w.onWorkerStart, debug.traceback, w)
    core.setDeclaring(false)
    if not ok then error(err, 0) end
  end

  local started = false
  function Worker.runAll()
    if pending then return end -- a reload runs onWorkerStart itself
    if started then return end
    started = true
    -- Start from the loop, so that a script's own top-level code has run;
    -- one timer each, so that an error in one worker's start spares the rest.
    for _, w in ipairs(workers) do
      core.Timer.add(0, function() start(w) end, false)
    end
    if not core.hosted() then core.run() end
  end

  function Worker.stopAll()
    core.stop()
  end

  -- Phases of a reload transaction, driven by the C side.
  Worker._reload = {
    begin = function() pending = {} end,
    start = function()
      for _, w in ipairs(pending) do
        if w.onWorkerStart then w.onWorkerStart(w) end
      end
    end,
    commit = function() workers, pending = pending, nil end,
    abort = function() pending = nil end,
    done = function()
      for _, w in ipairs(workers) do
        if w.onWorkerReload then w.onWorkerReload(w) end
      end
    end,
  }

  return Worker
end
