-- Busted support for the moonwire specs: processes (test servers, the moonwire binary)
-- with pipes, deadlines and signals, on a luv loop. Knows nothing of moonwire's C code.
--
-- Everything waits on events (a line on a pipe, a process exit) with a deadline; nothing
-- sleeps to synchronise. Debian's lua-posix does not load under Lua 5.4, lua-luv does.
local uv = require "luv"

local H = {}

H.src = os.getenv("MOONWIRE_SRC") or "."
H.build = os.getenv("MOONWIRE_BUILD") or (H.src .. "/build")
H.bin = os.getenv("MOONWIRE_BIN") or (H.build .. "/moonwire")
H.python = "/usr/bin/python3"
H.valgrind = os.getenv("MOONWIRE_VALGRIND") == "1"

-- Is the binary under test built with ASan/UBSan? (build-asan sets MW_SANITIZE=ON.)
H.sanitized = (function()
  local f = io.open(H.build .. "/CMakeCache.txt")
  if not f then return false end
  local text = f:read("a")
  f:close()
  return text:match("MW_SANITIZE:BOOL=ON") ~= nil
end)()

-- Deadlines stretch under instrumentation: valgrind is ~20x slower, ASan ~2x.
H.slow = H.valgrind and 10 or (H.sanitized and 2 or 1)

H.VALGRIND_ARGS = { "valgrind", "--quiet", "--leak-check=full", "--show-leak-kinds=definite",
  "--errors-for-leak-kinds=definite", "--error-exitcode=99", "--track-fds=no" }

local procs = {}      -- every process started, so cleanup() can end the survivors
local tmpdir          -- one temp dir per spec file, made on first use

-- Environment -----------------------------------------------------------------------

local function env_list(extra)
  local env = uv.os_environ()
  for k, v in pairs(extra or {}) do
    if v == false then env[k] = nil else env[k] = tostring(v) end
  end
  local list = {}
  for k, v in pairs(env) do list[#list + 1] = k .. "=" .. v end
  return list
end

-- Runs the loop until pred() is true or timeout seconds pass; returns pred().
function H.run_until(pred, timeout)
  if pred() then return true end
  local expired = false
  local t = uv.new_timer()
  t:start(math.max(1, math.floor(timeout * 1000)), 0, function() expired = true end)
  while not pred() and not expired do uv.run("once") end
  t:stop()
  t:close()
  return pred() and true or false
end

function H.now() return uv.hrtime() / 1e9 end

-- Processes -------------------------------------------------------------------------

local Proc = {}
Proc.__index = Proc

local function split_lines(self)
  while true do
    local nl = self.outbuf:find("\n", 1, true)
    if not nl then break end
    self.lines[#self.lines + 1] = self.outbuf:sub(1, nl - 1)
    self.outbuf = self.outbuf:sub(nl + 1)
  end
end

-- H.spawn(argv, opts): opts.env (table, false removes a variable), opts.cwd, opts.name.
-- stdin, stdout and stderr are pipes; stdout is split into lines.
function H.spawn(argv, opts)
  opts = opts or {}
  local self = setmetatable({
    argv = argv, name = opts.name or argv[1], lines = {}, outbuf = "", errbuf = "",
    cursor = 1, exited = false, code = nil, signal = nil, out_eof = false, err_eof = false,
    started = H.now(),
  }, Proc)
  self.stdin = uv.new_pipe(false)
  self.stdout = uv.new_pipe(false)
  self.stderr = uv.new_pipe(false)
  local args = {}
  for i = 2, #argv do args[#args + 1] = argv[i] end
  local handle, pid = uv.spawn(argv[1], {
    args = args, cwd = opts.cwd or H.src, env = env_list(opts.env),
    stdio = { self.stdin, self.stdout, self.stderr },
  }, function(code, signal)
    self.exited, self.code, self.signal = true, code, signal
    self.ended = H.now()
  end)
  if not handle then
    error("cannot start " .. table.concat(argv, " ") .. ": " .. tostring(pid))
  end
  self.handle, self.pid = handle, pid
  self.stdout:read_start(function(err, data)
    if data then
      self.outbuf = self.outbuf .. data
      split_lines(self)
    else
      if self.outbuf ~= "" then self.lines[#self.lines + 1] = self.outbuf; self.outbuf = "" end
      self.out_eof = true
      self.stdout:read_stop()
    end
  end)
  self.stderr:read_start(function(err, data)
    if data then self.errbuf = self.errbuf .. data
    else self.err_eof = true; self.stderr:read_stop() end
  end)
  procs[#procs + 1] = self
  return self
end

function Proc:describe()
  local tail = {}
  for i = math.max(1, #self.lines - 30), #self.lines do tail[#tail + 1] = "  " .. self.lines[i] end
  return string.format("%s (pid %s, %s)\n stdout:\n%s\n stderr:\n%s", self.name, self.pid,
    self.exited and ("exited code=" .. tostring(self.code) .. " signal=" .. tostring(self.signal))
      or "running",
    table.concat(tail, "\n"), self.errbuf:sub(-4000))
end

-- Waits for a stdout line (after the ones already matched) matching a Lua pattern;
-- returns the line and the pattern's captures. Raises with the output on a timeout.
function Proc:wait_line(pattern, timeout)
  timeout = (timeout or 10) * H.slow
  local found
  H.run_until(function()
    for i = self.cursor, #self.lines do
      if self.lines[i]:find(pattern) then
        found = i
        return true
      end
    end
    return self.out_eof
  end, timeout)
  if not found then
    error(string.format("no line matching %q within %.1fs from %s", pattern, timeout,
      self:describe()), 2)
  end
  self.cursor = found + 1
  local line = self.lines[found]
  return line, select(1, line:match(pattern))
end

-- Every stdout line matching pattern so far.
function Proc:grep(pattern)
  local r = {}
  for _, l in ipairs(self.lines) do if l:find(pattern) then r[#r + 1] = l end end
  return r
end

function Proc:send(data)
  self.stdin:write(data)
end

function Proc:close_stdin()
  if not self.stdin_closed then
    self.stdin_closed = true
    self.stdin:close()
  end
end

function Proc:kill(sig)
  if self.exited then return false end
  return uv.process_kill(self.handle, sig or "sigterm")
end

function Proc:alive() return not self.exited end

-- Waits for the exit and for both pipes to end; returns code, signal, or nil on timeout.
function Proc:wait(timeout)
  timeout = (timeout or 20) * H.slow
  local ok = H.run_until(function() return self.exited and self.out_eof and self.err_eof end,
    timeout)
  if not ok then return nil, "timeout" end
  return self.code, self.signal
end

function Proc:stdout_text() return table.concat(self.lines, "\n") .. (self.outbuf or "") end
function Proc:stderr_text() return self.errbuf end

function Proc:finish()
  self:close_stdin()
  for _, h in ipairs { self.stdout, self.stderr, self.handle } do
    if h and not h:is_closing() then h:close() end
  end
end

-- Kills what is still running and removes the temp dir; call from after_each/teardown.
function H.cleanup()
  for _, p in ipairs(procs) do
    if not p.exited then
      p:kill("sigkill")
      H.run_until(function() return p.exited end, 5)
    end
    p:finish()
  end
  procs = {}
  uv.run("nowait")
  if tmpdir then
    os.execute("rm -rf '" .. tmpdir .. "'")
    tmpdir = nil
  end
end

-- Test servers ----------------------------------------------------------------------

-- Starts spec/servers/peer.py MODE with extra args; returns the process with .port set.
function H.server(mode, args)
  local argv = { H.python, "-u", H.src .. "/spec/servers/peer.py", mode }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = tostring(a) end
  local p = H.spawn(argv, { name = "peer.py " .. mode })
  local _, port = p:wait_line("^PORT (%d+)$", 10)
  p.port = tonumber(port)
  return p
end

-- Starts spec/servers/<script> (a Python peer that prints `PORT <n>` first) with args;
-- returns the process with .port set.
function H.peer(script, args)
  local argv = { H.python, "-u", H.src .. "/spec/servers/" .. script }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = tostring(a) end
  local p = H.spawn(argv, { name = script })
  local _, port = p:wait_line("^PORT (%d+)$", 10)
  p.port = tonumber(port)
  return p
end

-- Starts spec/servers/dns.py; returns the process with .port and .env (the variable
-- that points moonwire's resolver at it).
function H.dns_server(args)
  local argv = { H.python, "-u", H.src .. "/spec/servers/dns.py" }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = tostring(a) end
  local p = H.spawn(argv, { name = "dns.py" })
  local _, port = p:wait_line("^PORT (%d+)$", 10)
  p.port = tonumber(port)
  p.env = { MOONWIRE_DNS_SERVERS = "127.0.0.1:" .. port }
  return p
end

-- A UDP port on 127.0.0.1 where nothing listens: DNS queries sent there go nowhere
-- off the machine and get "port unreachable".
function H.dead_dns_env()
  local s = uv.new_udp()
  s:bind("127.0.0.1", 0)
  local port = s:getsockname().port
  s:close()
  return { MOONWIRE_DNS_SERVERS = "127.0.0.1:" .. port }
end

-- Scripts -------------------------------------------------------------------------

function H.tmpdir()
  if not tmpdir then tmpdir = assert(uv.fs_mkdtemp("/tmp/moonwire-spec-XXXXXX")) end
  return tmpdir
end

-- Writes a script into the temp dir and returns its path. Unless raw, stdout is made
-- line-buffered on line 1 (same line, so line numbers in messages are unchanged): specs
-- wait for the script's lines while it runs.
function H.write_script(source, name, raw)
  local path = H.tmpdir() .. "/" .. (name or "script.lua")
  local f = assert(io.open(path, "wb"))
  if not raw then f:write('io.stdout:setvbuf("line") ') end
  f:write(source)
  f:close()
  return path
end

-- Starts moonwire. `script` is Lua source (written to opts.name or script.lua), or,
-- with opts.path, the path of an existing script; opts.argv replaces the whole command
-- line after the binary; opts.prefix comes before everything (a wrapper such as
-- nsenter). Returns the running process.
function H.start(script, args, opts)
  opts = opts or {}
  local argv = {}
  for _, a in ipairs(opts.prefix or {}) do argv[#argv + 1] = a end
  if H.valgrind or opts.valgrind then
    for _, a in ipairs(H.VALGRIND_ARGS) do argv[#argv + 1] = a end
    argv[#(opts.prefix or {}) + 1] = "/usr/bin/valgrind"
  end
  argv[#argv + 1] = H.bin
  if opts.argv then
    for _, a in ipairs(opts.argv) do argv[#argv + 1] = a end
  else
    local path = opts.path or H.write_script(script, opts.name, opts.raw)
    for _, a in ipairs(opts.options or {}) do argv[#argv + 1] = a end
    argv[#argv + 1] = path
    for _, a in ipairs(args or {}) do argv[#argv + 1] = tostring(a) end
  end
  local p = H.spawn(argv, { env = opts.env, cwd = opts.cwd, name = "moonwire" })
  p:close_stdin()
  return p
end

-- Runs moonwire to the end (deadline opts.timeout, default 20 s). Returns a result:
-- code, signal, lines (stdout), stdout, stderr, timed_out, elapsed, proc.
function H.run(script, args, opts)
  opts = opts or {}
  return H.result(H.start(script, args, opts), opts.timeout)
end

-- Waits for a process H.start started to end (deadline timeout, default 20 s; killed
-- after it) and returns its result as H.run does: start several, then take each result,
-- and they run side by side.
function H.result(p, timeout)
  local code, signal = p:wait(timeout or 20)
  local timed_out = code == nil
  if timed_out then
    p:kill("sigkill")
    p:wait(5)
  end
  return {
    code = p.code, signal = p.signal, lines = p.lines, stdout = p:stdout_text(),
    stderr = p:stderr_text(), timed_out = timed_out, proc = p,
    elapsed = (p.ended or H.now()) - p.started,
  }
end

-- Result checks ---------------------------------------------------------------------

function H.describe(res)
  return string.format("exit code=%s signal=%s timed_out=%s\n--- stdout:\n%s\n--- stderr:\n%s",
    tostring(res.code), tostring(res.signal), tostring(res.timed_out), res.stdout,
    res.stderr:sub(-6000))
end

local BAD = { "AddressSanitizer", "LeakSanitizer", "runtime error:", "definitely lost",
  "Invalid read", "Invalid write", "uninitialised", "Segmentation fault" }

-- No sanitizer or valgrind report on stderr.
function H.assert_clean(res)
  for _, word in ipairs(BAD) do
    if res.stderr:find(word, 1, true) then
      error("stderr reports " .. word .. "\n" .. H.describe(res), 2)
    end
  end
end

-- Exited by itself with `code` (default 0), in time, with a clean stderr.
function H.assert_exit(res, code)
  code = code or 0
  if res.timed_out or res.code ~= code or res.signal ~= 0 then
    error(string.format("expected exit code %d\n%s", code, H.describe(res)), 2)
  end
  H.assert_clean(res)
end

-- Lines of a result (or a process) matching a pattern.
function H.grep(lines, pattern)
  local r = {}
  for _, l in ipairs(lines) do if l:find(pattern) then r[#r + 1] = l end end
  return r
end

function H.count(lines, pattern) return #H.grep(lines, pattern) end

-- How many times a plain string occurs in a text (e.g. "stack traceback:" in stderr).
function H.count_text(text, needle)
  local n, pos = 0, 1
  while true do
    local s, e = text:find(needle, pos, true)
    if not s then return n end
    n, pos = n + 1, e + 1
  end
end

-- Line number of the first line of a script's source containing a plain string (a marker
-- such as `-- runaway`), for the file:line of an error message.
function H.line_of(src, needle)
  local n = 0
  for line in (src .. "\n"):gmatch("(.-)\n") do
    n = n + 1
    if line:find(needle, 1, true) then return n end
  end
  error("no line with " .. needle)
end

-- Memory of a running process from /proc, in KiB: VmRSS and VmHWM (peak).
function H.vmrss(pid)
  local f = io.open("/proc/" .. pid .. "/status")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return tonumber(text:match("VmRSS:%s*(%d+)")), tonumber(text:match("VmHWM:%s*(%d+)"))
end

-- Lua source a script can include to read its own memory (KiB) from /proc/self/status.
H.MEM_LUA = [[
local function mem(field)
  local f = io.open("/proc/self/status"); local t = f:read("a"); f:close()
  return tonumber(t:match(field .. ":%s*(%d+)"))
end
]]

return H
