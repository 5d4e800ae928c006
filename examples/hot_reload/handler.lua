-- examples/hot_reload/handler.lua: how the bot answers. Change the text below and save;
-- the running bot uses the new version for the next message.
local M = {}

function M.describe(data, stats)
  return ("got %q (%d received so far)"):format(data, stats.received)
end

return M
