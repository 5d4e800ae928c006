-- proxy_client: a WebSocket client behind a proxy. The proxy comes from the second
-- argument ("http://user:pass@host:3128", "socks5h://host:1080"), else from the
-- environment as curl reads it (http_proxy for ws://, https_proxy for wss://, all_proxy,
-- no_proxy). TLS and the WebSocket handshake run end to end with the target.
--   moonwire examples/proxy_client.lua ws://127.0.0.1:8080/echo http://127.0.0.1:3128
--   https_proxy=http://127.0.0.1:3128 moonwire examples/proxy_client.lua wss://127.0.0.1:8443/
local mw = require "moonwire"

local url, proxy = arg[1] or "ws://127.0.0.1:8080/", arg[2]
local ws = mw.AsyncTcpConnection.new(url, { proxy = proxy })

ws.onWebSocketConnect = function(conn)
  print(("connected to %s through %s"):format(conn.url, conn:getRemoteAddress()))
  conn:send("hello through the proxy")
end

ws.onMessage = function(conn, data)
  print("echo: " .. data)
  conn:close()
end

ws.onError = function(conn, code, msg) print("error: " .. msg) end
ws.onClose = function(conn) print("closed") end

ws:connect()
