-- TLS fixtures for the specs: certificates made at test time (spec/servers/tls_certs.sh),
-- TLS peers (spec/servers/tls_peer.py) and nginx terminating TLS in front of a ws peer.
-- Knows nothing of moonwire's C code.
local uv = require "luv"
local H = require "spec.support.helper"

local T = {}

local certs_dir -- made once per spec file (the helper's temp dir goes in cleanup)

-- The certificate directory, made on first use in its own temp dir.
function T.certs()
  if certs_dir and io.open(certs_dir .. "/ca.pem") then return certs_dir end
  certs_dir = assert(uv.fs_mkdtemp("/tmp/moonwire-certs-XXXXXX"))
  local cmd = string.format("sh '%s/spec/servers/tls_certs.sh' '%s' >/dev/null 2>'%s/err.txt'",
    H.src, certs_dir, certs_dir)
  local ok = os.execute(cmd)
  if not ok then
    local f = io.open(certs_dir .. "/err.txt")
    error("making test certificates failed: " .. (f and f:read("a") or "?"))
  end
  return certs_dir
end

function T.remove_certs()
  if certs_dir then os.execute("rm -rf '" .. certs_dir .. "'") end
  certs_dir = nil
end

-- Starts tls_peer.py MODE with the server certificate `cert` (a name in certs(), default
-- "server"); extra args follow. Returns the process with .port.
function T.server(mode, cert, args)
  local dir = T.certs()
  local argv = { H.python, "-u", H.src .. "/spec/servers/tls_peer.py", mode }
  if cert ~= false then
    cert = cert or "server"
    for _, a in ipairs { "--cert", dir .. "/" .. cert .. ".pem", "--key", dir .. "/" .. cert .. ".key" } do
      argv[#argv + 1] = a
    end
  end
  for _, a in ipairs(args or {}) do argv[#argv + 1] = tostring(a) end
  local p = H.spawn(argv, { name = "tls_peer.py " .. mode })
  local _, port = p:wait_line("^PORT (%d+)$", 10)
  p.port = tonumber(port)
  return p
end

-- A TCP port on 127.0.0.1 that was free a moment ago.
local function free_port()
  local s = uv.new_tcp()
  assert(s:bind("127.0.0.1", 0))
  local port = s:getsockname().port
  s:close()
  uv.run("nowait")
  return port
end

-- Waits until something accepts TCP connections on port.
local function wait_port(port, timeout)
  local deadline = H.now() + timeout
  while H.now() < deadline do
    local done, ok = false, false
    local s = uv.new_tcp()
    s:connect("127.0.0.1", port, function(err) ok = not err; done = true end)
    H.run_until(function() return done end, 1)
    if not s:is_closing() then s:close() end
    if ok then return true end
    H.run_until(function() return false end, 0.05)
  end
  return false
end

T.free_port, T.wait_port = free_port, wait_port

-- A control line into a running script: a TCP server on 127.0.0.1 in this process, to
-- which the script connects (text://127.0.0.1:<port>). ctl:send(line) writes one line once
-- the script is connected, so a spec drives a script step by step, each step started by
-- the spec and each result a line the script prints. ctl:close() in after_each.
function T.control()
  local srv = uv.new_tcp()
  assert(srv:bind("127.0.0.1", 0))
  -- a write to a script that died must fail, not kill busted with SIGPIPE
  local sigpipe = uv.new_signal()
  sigpipe:start("sigpipe", function() end)
  local ctl = { port = srv:getsockname().port }
  assert(srv:listen(4, function(err)
    if err then return end
    local c = uv.new_tcp()
    if ctl.client or not srv:accept(c) then c:close() else ctl.client = c end
  end))
  function ctl.send(self, line)
    if not H.run_until(function() return self.client ~= nil end, 10 * H.slow) then
      error("the script did not connect to the control port " .. self.port)
    end
    self.client:write(line .. "\n")
  end
  function ctl.close(self)
    for _, h in ipairs { self.client, srv, sigpipe } do
      if h and not h:is_closing() then h:close() end
    end
    uv.run("nowait")
  end
  return ctl
end

T.NGINX_PATHS = { "/usr/sbin/nginx", "/usr/bin/nginx" }

function T.nginx_bin()
  for _, p in ipairs(T.NGINX_PATHS) do
    if io.open(p) then return p end
  end
end

-- Starts nginx terminating TLS (the CA-signed server certificate) on a free port and
-- proxying WebSocket upgrades to 127.0.0.1:backend_port. Returns the process with .port.
-- Fails, never skips, when nginx is missing: the TLS proof needs it.
function T.nginx(backend_port)
  local bin = T.nginx_bin()
  if not bin then
    error("nginx is not installed: the TLS specs need it (apt-get install nginx-light; " ..
      "add it to scripts/bootstrap.sh's package list)")
  end
  local dir = H.tmpdir() .. "/nginx"
  os.execute("mkdir -p '" .. dir .. "'")
  local certs = T.certs()
  local port = free_port()
  local conf = string.format([[
daemon off;
master_process off;
worker_processes 1;
error_log stderr notice;
pid %s/nginx.pid;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %s/body;
  proxy_temp_path %s/proxy;
  fastcgi_temp_path %s/fastcgi;
  uwsgi_temp_path %s/uwsgi;
  scgi_temp_path %s/scgi;
  server {
    listen 127.0.0.1:%d ssl;
    server_name localhost;
    ssl_certificate %s/server.pem;
    ssl_certificate_key %s/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {
      proxy_pass http://127.0.0.1:%d;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_set_header Host $host;
      proxy_buffering off;
      proxy_read_timeout 120s;
      proxy_send_timeout 120s;
    }
  }
}
]], dir, dir, dir, dir, dir, dir, port, certs, certs, backend_port)
  local f = assert(io.open(dir .. "/nginx.conf", "w"))
  f:write(conf)
  f:close()
  local p = H.spawn({ bin, "-p", dir, "-c", dir .. "/nginx.conf" }, { name = "nginx" })
  if not wait_port(port, 10 * H.slow) then
    error("nginx did not start listening on port " .. port .. "\n" .. p:describe())
  end
  p.port = port
  return p
end

return T
