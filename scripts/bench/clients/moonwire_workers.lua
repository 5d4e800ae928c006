-- moonwire_workers.lua recv|send BASE N CONNS WORKERS SIZE: N messages of SIZE bytes over
-- CONNS connections (N / CONNS each) to the bench server at BASE (ws://host:port), spread
-- over WORKERS worker processes (worker.count; connection i goes to worker i % WORKERS).
-- recv: each connection reads /flood; send: each sends to /sink from a Lua loop, as
-- moonwire_send.lua does. Each worker prints
--   PART msgs=M bytes=B t0=T0 t1=T1
-- (mw.now() is CLOCK_MONOTONIC, one clock for every process): t0 when its first
-- handshake completed, t1 at its last message; bench.py sums the parts, and the rate runs
-- from the earliest t0 to the latest t1.
local mw = require "moonwire"
local mode, base, n, conns, workers, size = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4]),
  tonumber(arg[5]), tonumber(arg[6])
local per = n // conns
local msg = string.rep("x", size)

local w = mw.Worker.new()
w.count = workers
w.onWorkerStart = function(w)
  local mine, done, msgs, bytes, t0 = 0, 0, 0, 0, nil
  local function finished()
    done = done + 1
    if done == mine then
      io.write(string.format("PART msgs=%d bytes=%d t0=%.6f t1=%.6f\n", msgs, bytes, t0, mw.now()))
      io.flush()
    end
  end
  for i = 0, conns - 1 do
    if i % workers == w.id then
      mine = mine + 1
      local url = mode == "recv" and ("%s/flood?n=%d&size=%d&op=text"):format(base, per, size)
        or ("%s/sink?n=%d"):format(base, per)
      local c = mw.AsyncTcpConnection.new(url)
      local got, sent = 0, 0
      local function pump(c)
        while sent < per and not c:bufferFull() do
          c:sendText(msg)
          sent = sent + 1
        end
      end
      c.onWebSocketConnect = function(c)
        t0 = t0 or mw.now()
        if mode == "send" then pump(c) end
      end
      if mode == "send" then
        c.onBufferDrain = pump
        c.onMessage = function(c, data)
          if data == "done" then
            msgs, bytes = msgs + sent, bytes + sent * size
            c:close()
            finished()
          end
        end
      else
        c.onMessage = function(c, data)
          got = got + 1
          msgs, bytes = msgs + 1, bytes + #data
          if got == per then finished() end
        end
      end
      c.onError = function(c, code, m) io.stderr:write("error: ", m, "\n") end
      c:connect()
    end
  end
end
mw.Worker.runAll()
