-- wss_client: connect to a WebSocket server over TLS, say hello, print the echo and what
-- TLS negotiated, then close. The server's certificate is verified against the system
-- CA store, or against CA_FILE when one is given (a private CA, a test server).
--   moonwire examples/wss_client.lua wss://echo.example.com/ [CA_FILE]
local mw = require "moonwire"

local url, cafile = arg[1] or "wss://localhost:8443/", arg[2]
local ws = mw.AsyncTcpConnection.new(url, {
  ssl = {
    cafile = cafile,            -- nil: the system CA store
    -- verify_peer = false,     -- only for a server you cannot verify
    -- peer_name = "example.com",
    -- local_cert = "client.pem", local_pk = "client.key",
  },
})

ws.onWebSocketConnect = function(conn)
  local tls = conn:tlsInfo()
  print(("connected to %s (%s, %s%s)"):format(conn.url, tls.version, tls.cipher,
    tls.resumed and ", resumed" or ""))
  conn:send("hello over TLS")
end

ws.onMessage = function(conn, data)
  print("echo: " .. data)
  conn:close(1000, "done")
end

ws.onError = function(_, code, msg) print("error " .. code .. ": " .. msg) end
ws.onClose = function() print("closed") end
ws:connect()
