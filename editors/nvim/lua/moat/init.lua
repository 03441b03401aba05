-- moat for Neovim 0.10+: starts `moat lsp` for the enabled filetypes and shows its inline
-- completions as ghost text (see ghost.lua). On Neovim 0.12 the built-in
-- `vim.lsp.inline_completion` works with `moat lsp` too, without this plugin (README).

local M = {}

local defaults = {
  -- The server command; `moat` must be on PATH unless a full path is given.
  cmd = { 'moat', 'lsp' },
  filetypes = {
    'python', 'rust', 'go', 'java', 'javascript', 'javascriptreact', 'typescript',
    'typescriptreact', 'c', 'cpp', 'cs', 'php', 'kotlin', 'lua', 'ruby', 'sh',
  },
  -- Server settings (initializationOptions), e.g. { contextBudget = 1536, debounceMs = 75 }.
  settings = {},
  -- Wait this long after the last keystroke before asking (the server debounces too).
  debounce_ms = 30,
  -- Insert-mode keys; false turns one off.
  keymaps = {
    accept = '<Tab>',
    accept_word = '<M-Right>',
    accept_line = '<M-Down>',
    dismiss = '<C-]>',
  },
}

M.config = vim.deepcopy(defaults)
M.enabled = true

local function root_dir(bufnr)
  local name = vim.api.nvim_buf_get_name(bufnr)
  local found = vim.fs.root and vim.fs.root(bufnr, { '.git' }) or nil
  if found then
    return found
  end
  if name ~= '' then
    return vim.fs.dirname(name)
  end
  return vim.fn.getcwd()
end

--- The running moat client of a buffer (or any), if there is one.
function M.client(bufnr)
  local get = vim.lsp.get_clients or vim.lsp.get_active_clients
  local clients = get({ name = 'moat', bufnr = bufnr })
  return clients[1]
end

function M.start(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  if vim.bo[bufnr].buftype ~= '' then
    return
  end
  return vim.lsp.start({
    name = 'moat',
    cmd = M.config.cmd,
    root_dir = root_dir(bufnr),
    init_options = M.config.settings,
    settings = { moat = M.config.settings },
  }, { bufnr = bufnr })
end

--- A request answered synchronously (commands, health, tests).
function M.request_sync(method, params, timeout_ms, bufnr)
  local client = M.client(bufnr)
  if not client then
    return nil, 'moat is not running in this buffer'
  end
  local reply
  if vim.fn.has('nvim-0.11') == 1 then
    reply = client:request_sync(method, params, timeout_ms or 5000, bufnr or 0)
  else
    reply = client.request_sync(method, params, timeout_ms or 5000, bufnr or 0)
  end
  if not reply then
    return nil, 'no answer from moat'
  end
  if reply.err then
    return nil, reply.err.message or vim.inspect(reply.err)
  end
  return reply.result
end

function M.status()
  local s, err = M.request_sync('moat/status', vim.empty_dict(), 5000)
  if not s then
    vim.notify('moat: ' .. err, vim.log.levels.WARN)
    return
  end
  local model = s.model or {}
  local index = s.index or {}
  local c = s.counters or {}
  local lat = s.latencyMs or {}
  local lines = {
    ('moat %s: completions %s'):format(s.version or '?', M.enabled and 'on' or 'off'),
    ('model: %s %s'):format(model.state or '?', model.model or model.error or ''),
    ('adapter: %s %s'):format((s.adapter or {}).state or 'none', (s.adapter or {}).name or ''),
    ('index: %s, %s files under %s'):format(index.state or '?', index.files or 0, index.root or '-'),
    ('requests %d, shown %d, accepted %d, partly %d, dismissed %d'):format(
      c.requests or 0, c.shown or 0, c.accepted or 0, c.partially_accepted or 0, c.dismissed or 0),
    ('latency p50 %s ms, p95 %s ms'):format(
      lat.p50 and math.floor(lat.p50) or '-', lat.p95 and math.floor(lat.p95) or '-'),
  }
  vim.notify(table.concat(lines, '\n'), vim.log.levels.INFO)
  return s
end

function M.toggle()
  M.enabled = not M.enabled
  if not M.enabled then
    require('moat.ghost').clear_all()
  end
  vim.notify('moat: completions ' .. (M.enabled and 'on' or 'off'))
end

function M.setup(opts)
  M.config = vim.tbl_deep_extend('force', vim.deepcopy(defaults), opts or {})
  if opts and opts.filetypes then
    M.config.filetypes = opts.filetypes -- a list replaces, it does not merge
  end
  vim.api.nvim_set_hl(0, 'MoatGhost', { link = 'Comment', default = true })
  local group = vim.api.nvim_create_augroup('moat', { clear = true })
  vim.api.nvim_create_autocmd('FileType', {
    group = group,
    pattern = M.config.filetypes,
    callback = function(ev)
      M.start(ev.buf)
    end,
  })
  vim.api.nvim_create_autocmd('LspAttach', {
    group = group,
    callback = function(ev)
      local client = vim.lsp.get_client_by_id(ev.data.client_id)
      if client and client.name == 'moat' then
        require('moat.ghost').attach(ev.buf, client.id)
      end
    end,
  })
  vim.api.nvim_create_user_command('MoatStatus', M.status, { desc = 'moat: server, model and counters' })
  vim.api.nvim_create_user_command('MoatToggle', M.toggle, { desc = 'moat: completions on/off' })
  -- Buffers already open when setup runs.
  for _, buf in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(buf) and vim.tbl_contains(M.config.filetypes, vim.bo[buf].filetype) then
      M.start(buf)
    end
  end
end

return M
