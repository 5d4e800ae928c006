-- moonwire.worker: Workerman's Worker for a client host: onWorkerStart runs
-- when the loop starts, onWorkerStop once when it ends (by itself, stopAll,
-- SIGINT/SIGTERM; the C side guarantees once), onWorkerReload after a hot reload.
return function(core)
  local Worker = {}
  local workers = {}
  local pending       -- workers made by a reload under way

  -- The three callbacks live outside the worker table, so that every
  -- assignment goes through __newindex and a wrong value raises where it is
  -- made, not later when the loop calls it. Other fields are plain.
  local HOOKS = { onWorkerStart = true, onWorkerStop = true, onWorkerReload = true }
  Worker._callbacks = { "onWorkerStart", "onWorkerStop", "onWorkerReload" } -- for spec/docs
  local hooks = setmetatable({}, { __mode = "k" })  -- worker -> { name = fn }

  Worker.__index = function(w, k)
    if HOOKS[k] then return hooks[w][k] end
    return Worker[k]
  end

  Worker.__newindex = function(w, k, v)
    if HOOKS[k] then
      if v ~= nil and type(v) ~= "function" then
        error(("%s must be a function or nil, got %s"):format(k, type(v)), 2)
      end
      hooks[w][k] = v
    else
      if k == nil or k ~= k then error("a Worker field name must not be nil or NaN", 2) end
      if v ~= nil then core.checkCallbackName(k, "onWorkerStart", "onWorkerStop", "onWorkerReload") end
      rawset(w, k, v)
    end
  end

  function Worker.new()
    local w = setmetatable({ count = 1, id = core.workerId() }, Worker)
    hooks[w] = {}
    local list = pending or workers
    list[#list + 1] = w
    return w
  end

  -- worker.count > 1: the C side forks that many processes once the script
  -- has loaded (the largest count of any worker); process i runs the
  -- onWorkerStart of each worker whose count is above i, with worker.id = i.
  local function check_count(w)
    local n = rawget(w, "count")
    if math.type(n) ~= "integer" or n < 1 then
      error(("worker.count must be a positive integer, got %s"):format(tostring(n)), 0)
    end
    return n
  end
  core.setCountHook(function()
    local most = 1
    for _, w in ipairs(workers) do
      local n = check_count(w)
      if n > most then most = n end
    end
    return most
  end)

  -- Is w one of this process's? Sets its id. The count is read at start
  -- only: a reload that changes it changes no process (see README).
  local function mine(w, set_id)
    local id = core.workerId()
    if id >= (math.type(rawget(w, "count")) == "integer" and w.count or 1) then return false end
    if set_id then rawset(w, "id", id) end
    return true
  end

  -- Each worker's callback through the door on its own: an error is printed
  -- with its traceback and the next worker's callback still runs.
  local function each(list, name)
    for _, w in ipairs(list) do
      local fn = hooks[w][name]
      if fn and mine(w) then core.call(name, fn, w) end
    end
  end

  core.setStopHook(function() each(workers, "onWorkerStop") end)

  -- onWorkerStart declares connections and timers, as the top level does.
  local function start(w)
    local fn = hooks[w].onWorkerStart
    if not fn or not mine(w, true) then return end
    local was = core.setDeclaring(true)
    core.call("onWorkerStart", fn, w)
    core.setDeclaring(was)
  end

  local started = false
  function Worker.runAll()
    if pending then return end -- a reload runs onWorkerStart itself
    if started then return end
    started = true
    -- Start from the loop, so that a script's own top-level code has run;
    -- one timer each, so that an error in one worker's start spares the rest.
    -- These timers are the host's, not declarations of the script: a reload
    -- must neither match the script's one-shot timers to them nor run them.
    local was = core.setDeclaring(false)
    -- A restarted worker (worker.count) was forked from the parent's copy of
    -- the script, as loaded at start: once its workers have started, it
    -- reloads, so that it runs the script as it is now, as its siblings do.
    local left = #workers
    local function started_one()
      left = left - 1
      if left == 0 and core.workerRestarted() and core.scriptPath() then core.reload() end
    end
    for _, w in ipairs(workers) do
      core.Timer.add(0, function() start(w); started_one() end, false)
    end
    core.setDeclaring(was)
    if not core.hosted() then core.run() end
  end

  function Worker.stopAll()
    core.stop()
  end

  -- Phases of a reload transaction, driven by the C side.
  Worker._reload = {
    begin = function() pending = {} end,
    -- an error here fails the whole reload (it is a transaction): no door per worker
    start = function()
      for _, w in ipairs(pending) do
        local fn = hooks[w].onWorkerStart
        if fn and mine(w, true) then fn(w) end
      end
    end,
    commit = function() workers, pending = pending, nil end,
    abort = function() pending = nil end,
    done = function() each(workers, "onWorkerReload") end,
  }

  return Worker
end
