-- sequential: a bot's session as one function that reads in the order things happen:
-- connect, log in, wait for the answer, subscribe, handle N messages, close. Each wait
-- (mw.connect, conn:receive) suspends only this coroutine; the loop, timers and other
-- connections go on meanwhile (README "Coroutines (sequential scripts)").
-- The server's protocol is spec/servers/ws_feed.py's: `login <user>` -> `welcome <user>`
-- or `denied <user>`; `subscribe <channel>` -> `subscribed <channel>`, then the feed.
--   moonwire examples/sequential.lua ws://127.0.0.1:8080/ [N] [user]
local mw = require "moonwire"

local url, n, user = arg[1] or "ws://127.0.0.1:8080/", tonumber(arg[2]) or 10, arg[3] or "alice"
local TIMEOUT = 5   -- seconds to wait for each answer

local function fail(...)
  io.stderr:write("sequential: ", table.concat({ ... }, " "), "\n")
end

-- One request, one answer: sends `request` and waits for the next message.
local function ask(conn, request)
  conn:send(request)
  local answer, why, code, reason = conn:receive(TIMEOUT)
  if not answer then
    if why == "timeout" then return nil, "no answer to '" .. request .. "' within " .. TIMEOUT .. " s" end
    return nil, ("the server closed (%s %s) before answering '%s'"):format(code, reason, request)
  end
  return answer
end

mw.spawn("session", function()
  -- `<close>`: however this function ends (a return, an error, a cancel), the
  -- connection is closed
  local conn <close>, err = mw.connect(url)
  if not conn then return fail(err) end
  print("connected to " .. url)

  local answer, why = ask(conn, "login " .. user)
  if not answer then return fail(why) end
  if not answer:find("^welcome ") then return fail("login refused: " .. answer) end
  print("logged in as " .. user)

  answer, why = ask(conn, "subscribe trades")
  if not answer then return fail(why) end
  if answer ~= "subscribed trades" then return fail("subscribe refused: " .. answer) end
  print("subscribed to trades")

  for i = 1, n do
    local msg, how, code, reason = conn:receive(TIMEOUT)
    if not msg then
      if how == "timeout" then return fail(("message %d of %d: nothing within %d s"):format(i, n, TIMEOUT)) end
      return fail(("the server closed after %d of %d messages: %s %s"):format(i - 1, n, code, reason))
    end
    print(("message %d: %s"):format(i, msg))
  end
  print(("received %d messages, closing"):format(n))
  conn:close(1000, "done")
end)
