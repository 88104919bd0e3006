-- lode.progress: a progress line for long runs, on stderr.
--
-- On a terminal it redraws one live line (files done/total, chunks, MB/s,
-- ETA) at most ten times a second; otherwise (a log file, a pipe, CI) it
-- writes a plain line at most every `interval` seconds (default 2), so logs
-- stay readable. Inside a workflow body it also reports to the state
-- database (lode.progress, at most twice a second and at the end), where
-- `lode workflow list/get` in another terminal shows it. It keeps no durable
-- state: a workflow body that re-runs on recovery simply reports again from
-- where the replay stands.
--
--   local progress = require("lode.progress")
--   local p = progress.new{ total_files = #files, total_bytes = bytes }
--   p:add{ files = 1, bytes = n, chunks = c }
--   p:finish()

local M = {}

-- Wall-clock seconds with sub-second resolution. Lua's os.time() counts whole
-- seconds and os.clock() CPU time, neither good for a rate; /proc/uptime is
-- monotonic with 10 ms resolution on Linux. Elsewhere whole seconds do.
local function wall()
  local f = io.open("/proc/uptime", "r")
  if f then
    local up = f:read("n")
    f:close()
    if up then return up end
  end
  return os.time()
end
M.wall = wall

local tty_cache
--- True when stderr is a terminal (LODE_PROGRESS=tty|plain|off overrides).
function M.stderr_is_tty()
  local force = os.getenv("LODE_PROGRESS")
  if force == "tty" then return true elseif force == "plain" then return false end
  if tty_cache == nil then
    -- The shell inherits our stderr, so `test -t 2` answers for it.
    tty_cache = os.execute("test -t 2") == true
  end
  return tty_cache
end

local P = {}
P.__index = P

function M.new(o)
  o = o or {}
  local mode = os.getenv("LODE_PROGRESS") == "off" and "off"
    or (M.stderr_is_tty() and "tty" or "plain")
  return setmetatable({
    mode = mode, label = o.label or "ingest",
    total_files = o.total_files or 0, total_bytes = o.total_bytes or 0,
    files = 0, bytes = 0, chunks = 0, t0 = wall(), last = nil,
    interval = o.interval or (mode == "tty" and 0.1 or 2.0), reported = nil,
    out = o.out or io.stderr,
  }, P)
end

local function mb(n) return n / (1024 * 1024) end

function P:line()
  local dt = wall() - self.t0
  local rate = dt > 0 and mb(self.bytes) / dt or 0
  local eta = "?"
  if self.total_bytes > 0 and self.bytes >= self.total_bytes then
    eta = "0s"
  elseif self.bytes > 0 and dt > 0 and self.total_bytes > 0 then
    local left = (self.total_bytes - self.bytes) * dt / self.bytes
    eta = string.format("%ds", math.max(0, math.floor(left + 0.5)))
  end
  return string.format("%s: %d/%d files, %d chunks, %.1f MB, %.2f MB/s, ETA %s",
    self.label, self.files, self.total_files, self.chunks, mb(self.bytes), rate, eta)
end

-- What another process sees (lode workflow get): the counts and the line.
function P:report(force)
  local lode = package.loaded.lode
  if not (lode and lode.progress) then return end
  local now = wall()
  if not force and self.reported and now - self.reported < 0.5 then return end
  self.reported = now
  lode.progress{ files = self.files, total_files = self.total_files, chunks = self.chunks,
                 bytes = self.bytes, total_bytes = self.total_bytes, line = self:line() }
end

function P:add(d)
  self.files = self.files + (d.files or 0)
  self.bytes = self.bytes + (d.bytes or 0)
  self.chunks = self.chunks + (d.chunks or 0)
  self:report(false)
  if self.mode == "off" then return end
  local now = wall()
  if self.last and now - self.last < self.interval then return end
  if not self.last and self.mode == "plain" and now - self.t0 < self.interval then return end
  self.last = now
  if self.mode == "tty" then
    self.out:write("\r", self:line(), "\27[K")
  else
    self.out:write(self:line(), "\n")
  end
  self.out:flush()
end

--- Ends the live line (a terminal gets its final state and a newline).
function P:finish()
  self:report(true)
  if self.mode == "tty" then
    self.out:write("\r", self:line(), "\27[K\n")
    self.out:flush()
  end
end

return M
