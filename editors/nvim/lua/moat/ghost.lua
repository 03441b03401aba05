-- Ghost text: asks moat for an inline completion after each change in insert mode, draws it
-- with an extmark (inline virtual text on the cursor's line, virtual lines below), and
-- reports to the server what became of it: shown, accepted (the item's command), partly
-- accepted (word, line), dismissed.

local M = {}

local ns = vim.api.nvim_create_namespace('moat.ghost')
local uv = vim.uv or vim.loop
-- Per buffer: client_id, timer, req (pending request id), item (the one on screen),
-- row/scol (where its range starts), ghost (what is drawn), shown/accepted by item id.
local bufs = {}

local new_api = vim.fn.has('nvim-0.11') == 1

local function request(client, method, params, handler, bufnr)
  if new_api then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

local function notify(client, method, params)
  if new_api then
    return client:notify(method, params)
  end
  return client.notify(method, params)
end

local function cancel(client, id)
  if new_api then
    return client:cancel_request(id)
  end
  return client.cancel_request(id)
end

local function moat()
  return require('moat')
end

local function client_of(bufnr)
  local s = bufs[bufnr]
  return s and vim.lsp.get_client_by_id(s.client_id)
end

local function item_id(item)
  local args = item and item.command and item.command.arguments
  return args and args[1]
end

local function item_text(item)
  local t = item.insertText
  if type(t) == 'table' then
    return t.value or ''
  end
  return t or ''
end

local function line_at(bufnr, row)
  return vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
end

-- A position's column in bytes, whatever the encoding the server chose.
local function byte_col(line, col, encoding)
  if encoding == 'utf-8' then
    return math.min(col, #line)
  end
  local ok, r = pcall(vim.str_byteindex, line, encoding, col, false) -- 0.11+
  if ok and type(r) == 'number' then
    return r
  end
  ok, r = pcall(vim.str_byteindex, line, col, encoding == 'utf-16') -- 0.10
  return ok and r or #line
end

function M.clear(bufnr)
  local s = bufs[bufnr]
  if s then
    s.item, s.ghost = nil, nil
  end
  if vim.api.nvim_buf_is_valid(bufnr) then
    vim.api.nvim_buf_clear_namespace(bufnr, ns, 0, -1)
  end
end

function M.clear_all()
  for bufnr in pairs(bufs) do
    M.clear(bufnr)
  end
end

--- What is drawn in the buffer now, or nil.
function M.visible(bufnr)
  local s = bufs[bufnr or vim.api.nvim_get_current_buf()]
  return s and s.ghost
end

local function draw(bufnr, row, col, ghost)
  vim.api.nvim_buf_clear_namespace(bufnr, ns, 0, -1)
  local spaces = string.rep(' ', vim.bo[bufnr].tabstop)
  local lines = vim.split((ghost:gsub('\t', spaces)), '\n', { plain = true })
  local opts = {
    virt_text = { { lines[1], 'MoatGhost' } },
    virt_text_pos = 'inline',
    hl_mode = 'combine',
  }
  if #lines > 1 then
    local below = {}
    for i = 2, #lines do
      below[#below + 1] = { { lines[i], 'MoatGhost' } }
    end
    opts.virt_lines = below
  end
  vim.api.nvim_buf_set_extmark(bufnr, ns, row, col, opts)
end

-- Draws `item` if it still applies at the cursor: the text typed since its range's start
-- must be the start of its text. True when something is drawn.
local function render(bufnr, item)
  local s = bufs[bufnr]
  local client = client_of(bufnr)
  if not s or not client then
    return false
  end
  local cur = vim.api.nvim_win_get_cursor(0)
  local row, col = cur[1] - 1, cur[2]
  local srow, scol = row, col
  if item.range then
    srow = item.range.start.line
    scol = byte_col(line_at(bufnr, srow), item.range.start.character, client.offset_encoding)
  end
  local text = item_text(item)
  local typed = line_at(bufnr, row):sub(scol + 1, col)
  if srow ~= row or scol > col or text:sub(1, #typed) ~= typed or #text == #typed then
    M.clear(bufnr)
    return false
  end
  s.item, s.row, s.scol, s.ghost = item, row, scol, text:sub(#typed + 1)
  draw(bufnr, row, col, s.ghost)
  return true
end

function M.request(bufnr)
  local s = bufs[bufnr]
  local client = client_of(bufnr)
  if not s or not client or not moat().enabled then
    return
  end
  if vim.api.nvim_get_current_buf() ~= bufnr or vim.fn.mode() ~= 'i' then
    return
  end
  if s.req then
    cancel(client, s.req)
    s.req = nil
  end
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  params.context = { triggerKind = 2 }
  local tick = vim.api.nvim_buf_get_changedtick(bufnr)
  local cur = vim.api.nvim_win_get_cursor(0)
  local id
  local ok, rid = request(client, 'textDocument/inlineCompletion', params, function(err, result)
    if s.req == id then
      s.req = nil
    end
    if err or not result then
      return
    end
    local now = vim.api.nvim_win_get_cursor(0)
    if vim.api.nvim_buf_get_changedtick(bufnr) ~= tick or now[1] ~= cur[1] or now[2] ~= cur[2]
      or vim.fn.mode() ~= 'i' or vim.api.nvim_get_current_buf() ~= bufnr
      or s.dismissed_at == tick then
      return -- the answer is for a text that is gone
    end
    local item = (result.items or result)[1]
    if not item then
      M.clear(bufnr)
      return
    end
    local iid = item_id(item)
    if render(bufnr, item) and iid and not s.shown[iid] then
      s.shown[iid] = true
      notify(client, 'textDocument/didShowCompletion', { item = item })
    end
  end, bufnr)
  if ok then
    id = rid
    s.req = rid
  end
end

-- After a change: keep drawing what still applies (typing through it), and ask again after
-- a short pause.
function M.changed(bufnr)
  local s = bufs[bufnr]
  if not s then
    return
  end
  if not moat().enabled or vim.fn.mode() ~= 'i' then
    M.clear(bufnr)
    return
  end
  if s.dismissed_at == vim.api.nvim_buf_get_changedtick(bufnr) then
    return -- the cursor moved over a dismissed suggestion's text: nothing to ask
  end
  if s.item then
    render(bufnr, s.item)
  end
  s.timer:stop()
  s.timer:start(moat().config.debounce_ms, 0, vim.schedule_wrap(function()
    M.request(bufnr)
  end))
end

local function insert_at_cursor(bufnr, text)
  local cur = vim.api.nvim_win_get_cursor(0)
  local row, col = cur[1] - 1, cur[2]
  local lines = vim.split(text, '\n', { plain = true })
  vim.api.nvim_buf_set_text(bufnr, row, col, row, col, lines)
  local last = row + #lines - 1
  local last_col = (#lines == 1 and col or 0) + #lines[#lines]
  vim.api.nvim_win_set_cursor(0, { last + 1, last_col })
end

-- The buffer, its state and client when a completion is on screen there.
local function on_screen(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local s = bufs[bufnr]
  local client = client_of(bufnr)
  if s and s.item and client then
    return bufnr, s, client
  end
  return bufnr
end

--- Accepts the whole completion; false when none is shown.
function M.accept(bufnr)
  local s, client
  bufnr, s, client = on_screen(bufnr)
  if not s then
    return false
  end
  local item, ghost = s.item, s.ghost
  M.clear(bufnr)
  insert_at_cursor(bufnr, ghost)
  if item.command then
    request(client, 'workspace/executeCommand', {
      command = item.command.command,
      arguments = item.command.arguments,
    }, function() end, bufnr)
  end
  return true
end

-- The next word of the ghost text (with the blanks before it), or its rest of line.
local function piece(ghost, kind)
  if ghost:sub(1, 1) == '\n' then
    return '\n' .. (ghost:sub(2):match('^[ \t]*') or '')
  end
  if kind == 'line' then
    return ghost:match('^[^\n]*')
  end
  return ghost:match('^%s*[%w_]+') or ghost:match('^%s*[^%w_%s]+') or ghost:match('^%s+') or ghost
end

--- Accepts the next word or the rest of the line; the server hears how much was taken.
function M.accept_part(kind, bufnr)
  local s, client
  bufnr, s, client = on_screen(bufnr)
  if not s then
    return false
  end
  local item, ghost = s.item, s.ghost
  local take = piece(ghost, kind)
  if take == ghost then
    return M.accept(bufnr)
  end
  local iid = item_id(item)
  insert_at_cursor(bufnr, take)
  if iid then
    s.accepted[iid] = (s.accepted[iid] or 0) + vim.fn.strchars(take)
    notify(client, 'textDocument/didPartiallyAcceptCompletion', {
      item = item,
      acceptedLength = s.accepted[iid],
    })
  end
  render(bufnr, item) -- the rest stays on screen
  return true
end

--- Dismisses the completion on screen; false when none is.
function M.dismiss(bufnr)
  local s, client
  bufnr, s, client = on_screen(bufnr)
  if not s then
    return false
  end
  local item = s.item
  M.clear(bufnr)
  -- Until the text changes, no answer brings it back.
  s.timer:stop()
  if s.req then
    cancel(client, s.req)
    s.req = nil
  end
  s.dismissed_at = vim.api.nvim_buf_get_changedtick(bufnr)
  notify(client, 'moat/didDismissCompletion', { item = item })
  return true
end

local function feed(keys)
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(keys, true, false, true), 'n', false)
end

local function map(bufnr, lhs, action)
  if not lhs then
    return
  end
  vim.keymap.set('i', lhs, function()
    if not action(bufnr) then
      feed(lhs) -- nothing shown: the key does what it always does
    end
  end, { buffer = bufnr, desc = 'moat' })
end

function M.attach(bufnr, client_id)
  if bufs[bufnr] then
    bufs[bufnr].client_id = client_id
    return
  end
  bufs[bufnr] = { client_id = client_id, timer = uv.new_timer(), shown = {}, accepted = {} }
  local group = vim.api.nvim_create_augroup('moat.ghost.' .. bufnr, { clear = true })
  vim.api.nvim_create_autocmd({ 'TextChangedI', 'CursorMovedI', 'InsertEnter' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.changed(bufnr)
    end,
  })
  vim.api.nvim_create_autocmd({ 'InsertLeave', 'BufLeave' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.clear(bufnr)
    end,
  })
  vim.api.nvim_create_autocmd({ 'BufUnload', 'LspDetach' }, {
    group = group,
    buffer = bufnr,
    callback = function(ev)
      if ev.event == 'LspDetach' and ev.data and ev.data.client_id ~= client_id then
        return
      end
      local s = bufs[bufnr]
      if s then
        s.timer:stop()
        s.timer:close()
      end
      bufs[bufnr] = nil
      pcall(vim.api.nvim_del_augroup_by_id, group)
      pcall(vim.api.nvim_buf_clear_namespace, bufnr, ns, 0, -1)
    end,
  })
  local keys = moat().config.keymaps
  map(bufnr, keys.accept, M.accept)
  map(bufnr, keys.accept_word, function(b)
    return M.accept_part('word', b)
  end)
  map(bufnr, keys.accept_line, function(b)
    return M.accept_part('line', b)
  end)
  map(bufnr, keys.dismiss, M.dismiss)
end

return M
