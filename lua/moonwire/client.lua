-- moonwire.client: `moonwire -c URL [options]`, a client at the terminal as wscat is
-- (issue 16): each line read is sent as a message, each message received is printed;
-- slash commands; the options of wscat and websocat where they have one. Input is read
-- line by line (mw.stdin); without a terminal there is no prompt.
local mw = require "moonwire"
local core = require "moonwire.core"

local USAGE = [==[
usage: moonwire -c URL [options]
Connects to URL (ws://, wss://, tcp://, text://), sends each line read as a message and
prints each message received ("< text"; binary as hex). End of input closes (1000).
  -H, --header 'Name: value'  an extra header of the handshake (repeatable)
  -s, --subprotocol P         offer subprotocol P (repeatable)
  -o, --origin O              the Origin header
  -n, --no-check              do not verify the server's certificate
      --ca FILE               trust the CAs in FILE
      --cert FILE, --key FILE a client certificate and its key
  -b, --binary                send lines as binary messages
      --quiet-binary          print a binary message's length, not its bytes
  -x, --execute MSG           send MSG once open (repeatable), then wait -w seconds and close
  -w, --wait SECONDS          with -x: how long to wait for answers (default 2)
  -P, --show-ping-pong        print pings and pongs
      --ping-interval S       send a ping every S seconds
      --show-headers          print the server's 101 answer
      --compression on|off    permessage-deflate (default on)
      --proxy URL             connect through a proxy (http://, socks5://, socks5h://)
      --no-color              no colours (else on a terminal: received lines green,
                              errors red, notes dim; NO_COLOR in the environment too)
Commands: /ping [data], /close [code [reason]], /binary HEX, /quit, /help.
Exit status: 0 after a normal close, 1 after a connect, TLS or handshake failure, 2 for bad usage.
]==]

local COMMANDS = "/ping [data]  /close [code [reason]]  /binary HEX  /quit  /help"

local function hex(s) return (s:gsub(".", function(c) return ("%02x "):format(c:byte()) end):gsub(" $", "")) end

local function unhex(h)
  h = h:gsub("%s+", "")
  if #h % 2 == 1 or h:find("[^%x]") then return nil end
  return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

local function fail_usage(msg)
  io.stderr:write("moonwire: ", msg, "\n", USAGE)
  core.setExitCode(2)
end

return function(args)
  local o = { headers = {}, protocols = {}, execute = {}, wait = 2 }
  local i = 1
  local function value(name)
    i = i + 1
    if args[i] == nil then error({ usage = name .. " needs a value" }) end
    return args[i]
  end
  local ok, err = pcall(function()
    while i <= #args do
      local a = args[i]
      if a == "-H" or a == "--header" then
        local h = value(a)
        local name, v = h:match("^([^:]+):%s*(.*)$")
        if not name then error({ usage = "a header is 'Name: value', got '" .. h .. "'" }) end
        o.headers[name] = v
      elseif a == "-s" or a == "--subprotocol" then o.protocols[#o.protocols + 1] = value(a)
      elseif a == "-o" or a == "--origin" then o.origin = value(a)
      elseif a == "-n" or a == "--no-check" then o.nocheck = true
      elseif a == "--ca" then o.ca = value(a)
      elseif a == "--cert" then o.cert = value(a)
      elseif a == "--key" then o.key = value(a)
      elseif a == "-b" or a == "--binary" then o.binary = true
      elseif a == "--quiet-binary" then o.quiet_binary = true
      elseif a == "-x" or a == "--execute" then o.execute[#o.execute + 1] = value(a)
      elseif a == "-w" or a == "--wait" then
        o.wait = tonumber(value(a))
        if not o.wait or o.wait < 0 then error({ usage = "--wait needs a number of seconds >= 0" }) end
      elseif a == "-P" or a == "--show-ping-pong" then o.pingpong = true
      elseif a == "--ping-interval" then
        o.ping = tonumber(value(a))
        if not o.ping or o.ping <= 0 then error({ usage = "--ping-interval needs a number of seconds > 0" }) end
      elseif a == "--show-headers" then o.show_headers = true
      elseif a == "--compression" then
        local v = value(a)
        if v ~= "on" and v ~= "off" then error({ usage = "--compression is on or off" }) end
        o.compression = v == "on"
      elseif a == "--proxy" then o.proxy = value(a)
      elseif a == "--no-color" or a == "--no-colour" then o.no_color = true
      elseif a:sub(1, 1) == "-" and #a > 1 then error({ usage = "unknown option '" .. a .. "'" })
      elseif o.url then error({ usage = "one URL only (got '" .. o.url .. "' and '" .. a .. "')" })
      else o.url = a end
      i = i + 1
    end
  end)
  if not ok then
    if type(err) == "table" then return fail_usage(err.usage) end
    error(err, 0)
  end
  if not o.url then return fail_usage("-c needs a URL") end

  local options = { headers = o.headers }
  if #o.protocols > 0 then options.websocketClientProtocol = table.concat(o.protocols, ", ") end
  if o.origin then options.websocketOrigin = o.origin end
  if o.compression ~= nil then options.websocketCompression = o.compression end
  if o.ping then options.websocketPingInterval = o.ping end
  if o.proxy then options.proxy = o.proxy end
  if o.nocheck or o.ca or o.cert or o.key then
    options.ssl = { verify_peer = not o.nocheck, verify_peer_name = not o.nocheck, cafile = o.ca,
      local_cert = o.cert, local_pk = o.key }
  end
  local made, c = pcall(mw.AsyncTcpConnection.new, o.url, options)
  if not made then return fail_usage(tostring(c):gsub("^[^:]*:%d+: ", "")) end
  local ws = c.protocol == "ws" or c.protocol == "wss"
  local opened, closing, failed, input_ended = false, false, false, false
  -- a terminal on both ends: a prompt with editing and history, messages printed above it
  local tty = core.isatty(0) and core.isatty(1)
  local function out(line)
    if tty then core.ttyPrint(line .. "\n") else io.stdout:write(line, "\n") io.stdout:flush() end
  end
  -- colours on a terminal only, and not with NO_COLOR (no-color.org: set and not empty),
  -- TERM=dumb or --no-color: received lines green, errors red, notes dim
  local plain = o.no_color or (os.getenv("NO_COLOR") or "") ~= "" or os.getenv("TERM") == "dumb"
  local function painter(fd)
    if plain or not core.isatty(fd) then return function(_, s) return s end end
    return function(code, s) return "\27[" .. code .. "m" .. s .. "\27[0m" end
  end
  local paint, paint_err = painter(1), painter(2)
  local function received(line) out(paint("32", line)) end
  local function note(line) out(paint("2", line)) end
  local function problem(line) out(paint("31", line)) end


  local pending = {}   -- lines read before the connection opened

  local function send_line(line)
    if not opened then pending[#pending + 1] = line return end
    if line:sub(1, 1) == "/" then
      local cmd, rest = line:match("^/(%S+)%s*(.-)$")
      if cmd == "quit" then closing = true c:close()
      elseif cmd == "close" then
        local code, reason = rest:match("^(%d*)%s*(.-)$")
        closing = true
        if code ~= "" then c:close(tonumber(code), reason) else c:close() end
      elseif cmd == "ping" then
        local sent, why = c:ping(rest)
        if not sent then problem("! " .. why) end
      elseif cmd == "binary" then
        local bytes = unhex(rest)
        if bytes then c:sendBinary(bytes) else problem("! /binary takes hex digits, e.g. /binary 01ff") end
      elseif cmd == "help" then note(COMMANDS)
      else problem("! unknown command /" .. tostring(cmd) .. " (" .. COMMANDS .. ")") end
      return
    end
    if o.binary and ws then c:sendBinary(line) else c:send(line) end
  end

  local function on_open()
    opened = true
    for _, l in ipairs(pending) do send_line(l) end
    pending = {}
    if #o.execute > 0 then
      for _, m in ipairs(o.execute) do send_line(m) end
      mw.Timer.add(o.wait, function()
        if c:getStatus() == "ESTABLISHED" then closing = true c:close() end
      end, nil, false)
    elseif input_ended then
      closing = true
      c:close()
    end
  end

  c.onConnect = function() if not ws then on_open() end end
  c.onWebSocketConnect = function(_, response)
    if o.show_headers then note((response:gsub("\r\n$", ""):gsub("\r\n", "\n"))) end
    on_open()
  end
  c.onMessage = function(_, data, kind)
    if kind == "binary" then
      received(o.quiet_binary and ("< [binary " .. #data .. " bytes]") or ("< " .. hex(data)))
    else
      received("< " .. data)
    end
  end
  if o.pingpong then
    c.onWebSocketPing = function(_, p) note("< ping " .. p) end
    c.onWebSocketPong = function(_, p) note("< pong " .. p) end
  end
  c.onWebSocketClose = function(_, code, reason)
    if not closing then note(("closed by the server: %s %s"):format(code, reason)) end
  end
  c.onError = function(_, code, msg)
    io.stderr:write(paint_err("31", "moonwire: " .. msg), "\n")
    if not opened then failed = true core.setExitCode(1) end
  end
  c.onClose = function()
    if tty then core.ttyClose() else mw.stdin:close() end
    if not opened and not failed then core.setExitCode(1) end
  end

  local function input_end()
    input_ended = true
    -- the end of input closes (1000) once what was read is sent
    if opened and c:getStatus() == "ESTABLISHED" then closing = true c:close() end
  end
  if #o.execute == 0 then
    if tty then
      local started, why = core.ttyOpen("> ", function(line)
        if line == nil then input_end() else send_line(line) end
      end)
      if not started then tty = false io.stderr:write("moonwire: ", tostring(why), "\n") end
    end
    if not tty then
      mw.stdin.onLine = send_line
      mw.stdin.onEnd = input_end
    end
  end
  c:connect()
end
