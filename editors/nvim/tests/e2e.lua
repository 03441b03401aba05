-- End-to-end test in a real Neovim with the real server and the default model. This script
-- runs in a headless Neovim (`nvim --headless --clean -n -l e2e.lua`) and drives a child
-- `nvim --embed` over RPC with real keys, reading the child's screen.
--
-- Environment: MOAT_BIN (the moat binary), MOAT_NVIM (the child's nvim; default: this one),
-- MOAT_MODE = plugin (this plugin, Neovim 0.10+) or native (Neovim 0.12's own
-- vim.lsp.inline_completion, no plugin). The last line printed is `N passed, N failed`.

local uv = vim.uv or vim.loop
local here = vim.fs.dirname(vim.fs.normalize(debug.getinfo(1, 'S').source:sub(2)))
local plugin = vim.fs.dirname(here)
local moat_bin = assert(os.getenv('MOAT_BIN'), 'MOAT_BIN: the moat binary')
local child_nvim = os.getenv('MOAT_NVIM') or vim.v.progpath
local mode = os.getenv('MOAT_MODE') or 'plugin'

-- Each line straight to stdout (print in `-l` mode leaves the last one unterminated).
local function print(s)
  io.stdout:write(s, '\n')
  io.stdout:flush()
end

local passed, failed = 0, 0
local function check(name, ok, detail)
  if ok then
    passed = passed + 1
    print('ok   ' .. name)
  else
    failed = failed + 1
    print('FAIL ' .. name .. (detail and (': ' .. tostring(detail)) or ''))
  end
end

local function now_ms()
  return uv.hrtime() / 1e6
end

local dir = vim.fn.tempname()
vim.fn.mkdir(dir, 'p')
local file = dir .. '/calc.py'
vim.fn.writefile({ 'def add(a, b):', '    return ' }, file)
local db = dir .. '/telemetry.db'

local chan = vim.fn.jobstart({ child_nvim, '--embed', '--headless', '--clean', '-n' }, { rpc = true })
assert(chan > 0, 'could not start ' .. child_nvim)

local function lua(code, ...)
  return vim.rpcrequest(chan, 'nvim_exec_lua', code, { ... })
end

local function input(keys)
  vim.rpcrequest(chan, 'nvim_input', keys)
end

-- Polls `fn` until it returns a value; an error on timeout.
local function wait(what, timeout_ms, fn)
  local deadline = now_ms() + timeout_ms
  local last
  while now_ms() < deadline do
    local ok, v = pcall(fn)
    if ok and v then
      return v
    end
    last = v
    vim.wait(30)
  end
  error(('timed out waiting for %s (%s)'):format(what, vim.inspect(last)), 0)
end

-- The child's screen row `row` (1-based), as drawn.
local function screen_row(row)
  return lua([[
    local row = ...
    vim.cmd('redraw')
    local s = {}
    for c = 1, vim.o.columns do
      s[#s + 1] = vim.fn.screenstring(row, c)
    end
    return (table.concat(s):gsub('%s+$', ''))
  ]], row)
end

-- The ghost text the plugin has on screen, or nil (RPC turns nil into vim.NIL).
local function ghost_text()
  local v = lua("return require('moat.ghost').visible()")
  return v ~= vim.NIL and v or nil
end

local function line(n)
  return lua('return vim.api.nvim_buf_get_lines(0, ...)[1]', n - 1, n, false)
end

local cmd = { moat_bin, 'lsp', '--threads', '2', '--telemetry-db', db }
local settings = { debounceMs = 20 }

local ok, err = pcall(function()
  if mode == 'native' then
    lua([[
      local cmd, settings = ...
      vim.lsp.config('moat', { cmd = cmd, filetypes = { 'python' }, root_markers = { '.git' },
        init_options = settings })
      vim.lsp.enable('moat')
      vim.lsp.inline_completion.enable()
      vim.keymap.set('i', '<Tab>', function()
        if not vim.lsp.inline_completion.get() then return '<Tab>' end
      end, { expr = true })
    ]], cmd, settings)
  else
    lua([[
      local plugin, cmd, settings = ...
      vim.opt.rtp:prepend(plugin)
      require('moat').setup({ cmd = cmd, settings = settings })
    ]], plugin, cmd, settings)
  end
  lua('vim.cmd.edit(...)', file)
  local function status()
    return lua([[
      local c = vim.lsp.get_clients({ name = 'moat' })[1]
      if not c then return nil end
      local r = c:request_sync('moat/status', vim.empty_dict(), 5000, 0)
      return r and r.result
    ]])
  end
  local t0 = now_ms()
  wait('the model', 120000, function()
    local s = status()
    return s and s.model and s.model.state == 'ready'
  end)
  print(('server ready in %.1f s'):format((now_ms() - t0) / 1000))

  -- Type at the end of `    return ` and wait for ghost text on screen.
  input('GA')
  input('a')
  local typed = '    return a'
  wait('typing', 5000, function()
    return line(2) == typed
  end)
  t0 = now_ms()
  local shown = wait('ghost text', 60000, function()
    local row = screen_row(2)
    return #row > #typed and row:sub(1, #typed) == typed and row
  end)
  local ghost = shown:sub(#typed + 1)
  check('ghost text appears: ' .. vim.inspect(ghost), #ghost > 0)
  print(('ghost text after %.0f ms'):format(now_ms() - t0))

  input('<Tab>')
  local accepted = wait('the accept', 5000, function()
    local l = line(2)
    return l ~= typed and l
  end)
  check('Tab inserts the completion', vim.startswith(accepted, typed) and #accepted > #typed,
    accepted)
  check('what was inserted is what was shown', vim.startswith(accepted .. '\n', shown)
    or vim.startswith(shown, accepted), accepted .. ' vs ' .. shown)
  local s = wait('the accept to be counted', 5000, function()
    local st = status()
    return st and st.counters.accepted >= 1 and st
  end)
  check('the server counted the accept', s.counters.accepted == 1, vim.inspect(s.counters))
  if mode == 'plugin' then
    check('the server counted the show', s.counters.shown >= 1, vim.inspect(s.counters))

    -- A second function: ghost text, then dismissed with <C-]>.
    -- Keys are taken asynchronously: wait for the line, then for its ghost text.
    local function typed_line(want)
      return wait('typing ' .. want, 5000, function()
        local r = lua('return vim.api.nvim_win_get_cursor(0)[1]')
        return line(r) == want and r
      end)
    end
    input('<Esc>Go')
    input('def mul(a, b):<CR>return a')
    local text = '    return a'
    local row = typed_line(text)
    wait('ghost text for mul', 60000, function()
      return ghost_text() ~= nil
    end)
    input('<C-]>')
    wait('the ghost text to go', 5000, function()
      return ghost_text() == nil and screen_row(row) == text
    end)
    check('<C-]> dismisses', line(row) == text, line(row))
    s = wait('the dismissal to be counted', 5000, function()
      local st = status()
      return st and st.counters.dismissed >= 1 and st
    end)
    check('the server counted the dismissal', s.counters.dismissed == 1, vim.inspect(s.counters))

    -- Nothing shown: Tab does what Tab does (python indents with spaces).
    input('<Esc>o')
    local empty_row = lua('return vim.api.nvim_win_get_cursor(0)[1]')
    local start = line(empty_row)
    input('<Tab>')
    local after = wait('Tab to indent', 5000, function()
      local l = line(empty_row)
      return l ~= start and l
    end)
    check('Tab without a suggestion indents', after:match('^%s+$') ~= nil and #after > #start,
      vim.inspect(after))

    -- Accept a word: part of the ghost text goes in, the server hears how much.
    input('<C-u>')
    input('def sub(a, b):<CR>return a')
    row = typed_line(text)
    local g = wait('ghost text for sub', 60000, function()
      return ghost_text()
    end)
    local function from_row()
      return table.concat(lua('return vim.api.nvim_buf_get_lines(0, ...)', row - 1, -1, false), '\n')
    end
    local before_word = from_row()
    input('<M-Right>')
    local after_word = wait('the word', 5000, function()
      local t = from_row()
      return t ~= before_word and t
    end)
    -- What went in at the end of the line: a beginning of the ghost text, not all of it.
    local took = after_word:sub(#text + 1, #text + #after_word - #before_word)
    check('accept word inserts the first word only: ' .. vim.inspect(took),
      #took > 0 and #took < #g and vim.startswith(g, took), vim.inspect({ g, after_word }))
    s = wait('the partial accept to be counted', 5000, function()
      local st = status()
      return st and st.counters.partially_accepted >= 1 and st
    end)
    check('the server counted the partial accept', s.counters.partially_accepted == 1,
      vim.inspect(s.counters))

    -- Accept line on a fresh suggestion: its first line goes in (all of it when it has one).
    input('<Esc>Go')
    input('def neg(a):<CR>return ')
    row = typed_line('    return ')
    g = wait('ghost text for neg', 60000, function()
      return ghost_text()
    end)
    before_word = from_row()
    input('<M-Down>')
    local after_line = wait('the line', 5000, function()
      local t = from_row()
      return t ~= before_word and t
    end)
    took = after_line:sub(#'    return ' + 1, #'    return ' + #after_line - #before_word)
    local first = g:sub(1, 1) == '\n' and '\n' or g:match('^[^\n]*')
    check('accept line inserts the first line: ' .. vim.inspect(took), took == first,
      vim.inspect({ g, took }))

    -- :MoatToggle: no more requests, no ghost text; and back.
    lua('vim.cmd.MoatToggle()')
    local asked = status().counters.requests
    input('<Esc>Go')
    input('def inc(a):<CR>return a')
    typed_line('    return a')
    vim.wait(1500)
    check(':MoatToggle turns completions off', ghost_text() == nil
      and status().counters.requests == asked, vim.inspect(status().counters))
    lua('vim.cmd.MoatToggle()')
    input('<BS>a')
    wait('ghost text after toggling on', 60000, function()
      return ghost_text() ~= nil
    end)
    check(':MoatToggle turns them on again', true)

    -- :checkhealth moat finds the binary, the model and the running server.
    local health = lua([[
      vim.cmd('checkhealth moat')
      return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')
    ]])
    check(':checkhealth moat is happy', health:find('model ready', 1, true) ~= nil
      and not health:find('ERROR', 1, true), health)
  end
end)
if not ok then
  check('the session ran to the end', false, err)
end

pcall(lua, 'vim.cmd("qa!")')
pcall(vim.fn.jobstop, chan)
vim.fn.delete(dir, 'rf')
print(('%d passed, %d failed'):format(passed, failed))
vim.cmd(failed == 0 and 'qa!' or 'cq!')
