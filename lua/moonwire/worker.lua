-- moonwire.worker: Workerman's Worker for a client host: onWorkerStart runs
-- when the loop starts, onWorkerStop on stopAll or SIGINT/SIGTERM.
return function(core)
  local Worker = {}
  Worker.__index = Worker
  local workers = {}

  function Worker.new()
    local w = setmetatable({ count = 1, id = 0 }, Worker)
    workers[#workers + 1] = w
    return w
  end

  core.setStopHook(function()
    for _, w in ipairs(workers) do
      if w.onWorkerStop then w.onWorkerStop(w) end
    end
  end)

  local started = false
  function Worker.runAll()
    if started then return end
    started = true
    -- Start from the loop, so that a script's own top-level code has run.
    -- One timer each, so that an error in one worker's start spares the rest.
    for _, w in ipairs(workers) do
      core.Timer.add(0, function()
        if w.onWorkerStart then w.onWorkerStart(w) end
      end, false)
    end
    if not core.hosted() then core.run() end
  end

  function Worker.stopAll()
    core.stop()
  end

  return Worker
end
