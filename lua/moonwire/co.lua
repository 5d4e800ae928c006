-- moonwire.co: sequential scripts (issue 15). Coroutines driven by the loop beside
-- the callbacks: mw.spawn, mw.sleep, mw.connect, conn:receive, mw.receiveAny, and
-- conn:send that waits in a coroutine while the send queue is full. The C side calls
-- one hidden hook per connection a coroutine uses (events after the script's own
-- callbacks; messages only when the connection has no onMessage), and this file's
-- waiter when a coroutine's send finds the queue full.
return function(core, M)
  local Timer = core.Timer
  local unpack = table.unpack
  local running, getuv, rawget, type = coroutine.running, debug.getuservalue, rawget, type

  local tasks = setmetatable({}, { __mode = "k" }) -- coroutine -> task
  local Task = {}
  Task.__index = Task

  local function current()
    local co, main = coroutine.running()
    if main then return nil end
    return tasks[co]
  end

  local function need_task(what)
    local t = current()
    if not t then error(what .. " must be called from a coroutine started by mw.spawn", 3) end
    return t
  end

  -- Each wait takes a ticket; only the waker holding the current one resumes the task
  -- (a timeout and a message racing: the first wins, the other finds a stale ticket).
  local function block(t)
    t.ticket = t.ticket + 1
    return t.ticket
  end

  local step

  local function wake(t, ticket, ...)
    if t.ticket ~= ticket or t.status ~= "running" or coroutine.status(t.co) ~= "suspended" then return false end
    t.ticket = t.ticket + 1
    if t.timer then Timer.del(t.timer) t.timer = nil end
    if t.unwait then local u = t.unwait t.unwait = nil u() end
    step(t, ...)
    return true
  end

  local function ended(t, status)
    t.status = status
    if t.timer then Timer.del(t.timer) t.timer = nil end
    if t.unwait then local u = t.unwait t.unwait = nil u() end
  end

  step = function(t, ...)
    -- what a coroutine makes is never a declaration (a reload does not run it again)
    local prev = core.setDeclaring(false)
    local ok, err = coroutine.resume(t.co, ...)
    core.setDeclaring(prev)
    if not ok then
      -- cancel() from inside is its own way out; either way its to-be-closed
      -- variables are closed
      if t.status == "cancelled" then coroutine.close(t.co) return end
      ended(t, "failed")
      t.error = err
      core.report("coroutine " .. t.label, debug.traceback(t.co, type(err) == "string" and err or tostring(err)))
      coroutine.close(t.co)
    elseif coroutine.status(t.co) == "dead" then
      ended(t, "done")
    end
  end

  function Task:cancel()
    if self.status ~= "running" then return false end
    ended(self, "cancelled")
    self.ticket = self.ticket + 1
    if coroutine.running() == self.co then error("cancelled", 2) end
    -- to-be-closed variables of the coroutine are closed (a `<close>` connection too)
    coroutine.close(self.co)
    return true
  end

  function Task:__tostring() return ("task %s (%s)"):format(self.label, self.status) end

  -- Reload: a coroutine spawned while the script declares (its main chunk, a reload's
  -- run of it) is a declaration under its name, or its place among the unnamed ones;
  -- a reload finds the live one and does not start it again; one no longer declared is
  -- cancelled at the commit.
  local declared = {}     -- key -> task
  local tx                -- during a reload: { seen = {}, started = {}, n = 0 }
  local unnamed = 0

  function M.spawn(name, fn, ...)
    local args
    if type(name) == "function" then
      args = table.pack(fn, ...)
      fn, name = name, nil
    else
      args = table.pack(...)
    end
    if name ~= nil and type(name) ~= "string" then error("mw.spawn: the name must be a string", 2) end
    if type(fn) ~= "function" then error("mw.spawn: a function expected, got " .. type(fn), 2) end
    local key
    if core.declaring() then
      if name then key = name else
        if tx then tx.n = tx.n + 1 key = "#" .. tx.n else unnamed = unnamed + 1 key = "#" .. unnamed end
      end
      local live = declared[key]
      if tx and live and live.status == "running" then
        tx.seen[key] = true
        return live
      end
    end
    local t = setmetatable({ co = coroutine.create(fn), name = name, status = "running", ticket = 0 }, Task)
    t.label = name or tostring(t.co):gsub("^thread: ", "")
    tasks[t.co] = t
    if key then
      if tx then tx.seen[key] = true tx.started[#tx.started + 1] = { key = key, old = declared[key] } end
      declared[key] = t
    end
    step(t, unpack(args, 1, args.n))
    return t
  end

  M._coReload = {
    begin = function() tx = { seen = {}, started = {}, n = 0 } end,
    commit = function()
      for key, t in pairs(declared) do
        if not tx.seen[key] then
          declared[key] = nil
          t:cancel()
        end
      end
      unnamed = tx.n
      tx = nil
    end,
    abort = function()
      for i = #tx.started, 1, -1 do
        local s = tx.started[i]
        declared[s.key]:cancel()
        declared[s.key] = s.old
      end
      tx = nil
    end,
  }

  function M.sleep(seconds)
    local t = need_task("mw.sleep")
    if type(seconds) ~= "number" or not (seconds >= 0) then error("mw.sleep: seconds must be a number >= 0", 2) end
    local tk = block(t)
    t.timer = Timer.add(seconds, function() t.timer = nil wake(t, tk) end, nil, false)
    return coroutine.yield()
  end

  ---- connections ----

  local rx = setmetatable({}, { __mode = "k" }) -- conn -> its queue and waiters
  local DEFAULT_MSGS, DEFAULT_BYTES = 1000, 8 * 1024 * 1024

  local function limits(conn, s)
    local fm, fb = conn.maxRecvQueue, conn.maxRecvQueueBytes
    s.m = type(fm) == "number" and fm >= 1 and fm or DEFAULT_MSGS
    s.b = type(fb) == "number" and fb >= 1 and fb or DEFAULT_BYTES
  end

  local hook, flush
  local rxPop, rxWaiting = core.rxPop, core.rxWaiting

  -- The queue itself is the C side's (l_conn.c: appended by the message event, taken
  -- by conn:receive in C); this keeps the waiters and the connection's state.
  local function state(conn)
    local s = rx[conn]
    if not s then
      s = {}
      limits(conn, s)
      rx[conn] = s
      core.rxQueue(conn, math.floor(s.m), math.floor(s.b))
      -- the wake of a waiter that messages were queued for, once per batch (kick)
      s.kickfn = function() s.kick = nil flush(s.waiter) end
      conn["\1co"] = hook
    end
    return s
  end

  -- A receive waiter: { t, tk, conns = list or nil (receiveAny) }.
  local function clear_waiter(w)
    for _, c in ipairs(w.conns) do
      local s = rx[c]
      if s and s.waiter == w then s.waiter = nil rxWaiting(c, false) end
    end
  end

  local function deliver(conn, s, w, ...)
    clear_waiter(w)
    if w.any then return wake(w.t, w.tk, conn, ...) end
    return wake(w.t, w.tk, ...)
  end

  -- Wakes receive waiter w with the oldest queued message of its connections, if any.
  flush = function(w)
    if not w or w.connect then return false end
    local t = w.t   -- (as wake checks: a message is taken only for a task it will wake)
    if t.ticket ~= w.tk or t.status ~= "running" or coroutine.status(t.co) ~= "suspended" then return false end
    for _, c in ipairs(w.conns) do
      local s = rx[c]
      if s then
        local data, kind = rxPop(c)
        if data ~= nil then return deliver(c, s, w, data, kind) end
      end
    end
    return false
  end

  local function wake_senders(s)
    local list = s.senders
    if not list then return end
    s.senders = nil
    for _, w in ipairs(list) do wake(w.t, w.tk, true) end
  end

  -- A message is always queued; a waiting coroutine is woken once per batch of them
  -- (a zero timer: after this read's messages are all queued), and then takes them
  -- from the queue without a switch per message.
  hook = function(conn, ev, a, b)
    local s = rx[conn]
    if not s then return end
    local w = s.waiter
    if ev == "msg" then
      -- queued by C; a waiting coroutine is woken once per batch (a zero timer: after
      -- this read's messages are all queued), and takes them without a switch each
      if w and not s.kick and not w.connect then
        s.kick = Timer.add(0, s.kickfn, nil, false)
        if not s.kick then return flush(w) end   -- (no timers while stopping)
      end
    elseif ev == "open" then
      s.closed, s.code, s.reason, s.err = false, nil, nil, nil
      if w and w.connect then s.waiter = nil return wake(w.t, w.tk, conn) end
    elseif ev == "err" then
      s.err = { a, b }
      if w and w.connect then s.waiter = nil return wake(w.t, w.tk, nil, b, a) end
      return w ~= nil
    elseif ev == "wsclose" then
      s.code, s.reason = a, b
    elseif ev == "close" then
      s.closed = true
      wake_senders(s)
      if w then
        if w.connect then
          s.waiter = nil
          return wake(w.t, w.tk, nil, s.err and s.err[2] or "closed before it opened", s.err and s.err[1])
        end
        -- queued messages come first; the next receive finds the close
        if flush(w) then return true end
        return deliver(conn, s, w, nil, "closed", s.code, s.reason)
      end
    elseif ev == "drain" then
      wake_senders(s)
    end
  end

  function M.connect(url, options)
    local t = need_task("mw.connect")
    local conn = core.AsyncTcpConnection.new(url, options)
    local s = state(conn)
    local tk = block(t)
    local w = { t = t, tk = tk, connect = true, conns = { conn } }
    s.waiter = w
    t.unwait = function() if s.waiter == w then s.waiter = nil end end
    if not conn:connect() then
      s.waiter = nil
      t.unwait = nil
      return nil, "connect " .. url .. ": moonwire is stopping", core.errors.CONNECT_FAIL
    end
    return coroutine.yield()
  end

  local function check_timeout(timeout, what)
    if timeout ~= nil and (type(timeout) ~= "number" or not (timeout >= 0)) then
      error(what .. ": the timeout must be a number >= 0 (seconds) or nil", 3)
    end
  end

  local function wait_for(t, w, timeout)
    for _, c in ipairs(w.conns) do
      local s = state(c)
      if s.waiter then error("a coroutine already waits to receive on " .. tostring(c), 3) end
    end
    for _, c in ipairs(w.conns) do rx[c].waiter = w rxWaiting(c, true) end
    t.unwait = function() clear_waiter(w) end
    if timeout then
      t.timer = Timer.add(timeout, function()
        t.timer = nil
        if not flush(w) then wake(w.t, w.tk, nil, "timeout") end
      end, nil, false)
    end
    return coroutine.yield()
  end

  -- conn:receive([timeout]): the next whole message, data and kind; nil, "timeout";
  -- nil, "closed", code, reason. The C method returns a queued message at once; it
  -- calls this when there is none (or the caller is no coroutine), to wait.
  core.setReceiver(function(conn, timeout)
    local co, main = running()
    local t = not main and tasks[co]
    if not t then error("receive must be called from a coroutine started by mw.spawn", 3) end
    if timeout ~= nil then check_timeout(timeout, "receive") end
    local fields, cb = getuv(conn, 1), nil
    if type(fields) == "table" then cb = rawget(fields, "onMessage") else cb = conn.onMessage end
    if cb ~= nil then
      error("receive: this connection has an onMessage callback, which takes its messages", 3)
    end
    local s = rx[conn] or state(conn)
    local data, kind = rxPop(conn)
    if data ~= nil then return data, kind end
    if s.closed then return nil, "closed", s.code, s.reason end
    return wait_for(t, { t = t, tk = block(t), conns = { conn } }, timeout)
  end)

  -- mw.receiveAny(conns [, timeout]): the first message on any of them: conn, data, kind;
  -- nil, "timeout"; nil, "closed", conn, code, reason (the first that closed).
  function M.receiveAny(conns, timeout)
    local t = need_task("mw.receiveAny")
    if type(conns) ~= "table" or #conns == 0 then error("mw.receiveAny: a list of connections expected", 2) end
    check_timeout(timeout, "mw.receiveAny")
    for _, c in ipairs(conns) do
      state(c)
      local data, kind = rxPop(c)
      if data ~= nil then return c, data, kind end
    end
    for _, c in ipairs(conns) do
      local s = rx[c]
      if s.closed then return nil, "closed", c, s.code, s.reason end
    end
    local r = table.pack(wait_for(t, { t = t, tk = block(t), conns = conns, any = true }, timeout))
    if r[1] ~= nil and r[2] == nil then   -- a close woke it: conn, nil, "closed", code, reason
      return nil, "closed", r[1], r[4], r[5]
    end
    return unpack(r, 1, r.n)
  end

  ---- standard input ----

  -- mw.stdin: onLine(line) per line and onEnd(err) at the end when set; else lines wait
  -- in a queue (at most 1000: then reading pauses) for mw.stdin:read() in a coroutine.
  -- Nothing touches fd 0 until onLine is set or read() is called.
  local input = { q = {}, head = 1, tail = 0 }
  local fields = {}
  local stdin = {}

  local function stdin_dispatch(line, err)
    if line == nil then input.ended = true input.err = err end
    local cb = fields.onLine
    if cb and line ~= nil then return cb(line) end
    if line == nil and fields.onEnd then fields.onEnd(err) end
    local w = input.waiter
    if w then input.waiter = nil return wake(w.t, w.tk, line, err) end
    if line ~= nil then
      input.tail = input.tail + 1
      input.q[input.tail] = line
      if input.tail - input.head >= 999 and not input.paused then input.paused = true core.stdinPause(true) end
    end
  end

  local function stdin_start()
    if input.open or input.ended then return end
    local ok, err = core.stdinOpen(stdin_dispatch)
    if not ok then input.ended, input.err = true, err or "moonwire is stopping" end
    input.open = true
  end

  -- stdin:read(): the next line (without its newline); nil at the end; nil, err
  function stdin.read(self)
    local t = need_task("mw.stdin:read")
    if self ~= M.stdin then error("mw.stdin:read: call it with a colon", 2) end
    stdin_start()
    if input.head <= input.tail then
      local line = input.q[input.head]
      input.q[input.head] = nil
      input.head = input.head + 1
      if input.paused and input.tail - input.head < 500 then input.paused = false core.stdinPause(false) end
      return line
    end
    if input.ended then return nil, input.err end
    if input.waiter then error("mw.stdin:read: another coroutine is reading", 2) end
    local w = { t = t, tk = block(t) }
    input.waiter = w
    t.unwait = function() if input.waiter == w then input.waiter = nil end end
    return coroutine.yield()
  end

  -- stdin:close(): stop reading (a script waiting on nothing else may then end)
  function stdin.close(self)
    core.stdinClose()
    input.ended = true
  end

  M.stdin = setmetatable({}, {
    __index = function(_, k) return fields[k] or stdin[k] end,
    __newindex = function(_, k, v)
      if k ~= "onLine" and k ~= "onEnd" then error("mw.stdin has onLine and onEnd, not " .. tostring(k), 2) end
      if v ~= nil and type(v) ~= "function" then error("mw.stdin." .. k .. " must be a function or nil", 2) end
      fields[k] = v
      if k == "onLine" and v then
        -- lines queued before the callback was set go to it first
        while input.head <= input.tail do
          local line = input.q[input.head]
          input.q[input.head] = nil
          input.head = input.head + 1
          v(line)
        end
        if input.paused then input.paused = false core.stdinPause(false) end
        stdin_start()
      end
    end,
    __tostring = function() return "mw.stdin" end,
  })

  -- The C send asks this when the queue is full: true once the coroutine waited
  -- (until the queue drains or the connection closes), false for any other caller.
  core.setSendWaiter(function(conn)
    local t = current()
    if not t then return false end
    local s = state(conn)
    local tk = block(t)
    local list = s.senders or {}
    s.senders = list
    local w = { t = t, tk = tk }
    list[#list + 1] = w
    t.unwait = function()
      for i, x in ipairs(s.senders or {}) do if x == w then table.remove(s.senders, i) break end end
    end
    coroutine.yield()
    return true
  end)
end
