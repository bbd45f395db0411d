-- wrk script for benches/load/run.sh: replays pre-signed Box deliveries.
--
-- Reads $BOXHOOK_CORPUS.<t> for wrk thread t of $BOXHOOK_THREADS (written by
-- `sign_corpus load --threads N`: ready-made HTTP/1.1 requests, each its
-- length in bytes, a newline, and the request), so no two threads send the
-- same event and loading is plain reads, no parsing. Each thread then only
-- cycles through its requests. When a thread runs out it starts over
-- (those repeats are duplicates to boxhook) and the final report says how
-- many requests that was.

local corpus = os.getenv("BOXHOOK_CORPUS")
local threads = {}
local created = 0

-- BOXHOOK_DELAY_MS (benches/load/scale.sh's paced load): each connection
-- waits this long after an answer before its next request, so the load
-- stays near connections x 1000 / BOXHOOK_DELAY_MS requests/s instead of
-- as many as the server takes. Unset: no delay (run.sh's load).
local delay_ms = tonumber(os.getenv("BOXHOOK_DELAY_MS") or "")
if delay_ms and delay_ms > 0 then
   function delay()
      return delay_ms
   end
end

-- BOXHOOK_CLOSE=1 (run.sh's *-close rows): every request asks for
-- `connection: close`, so each delivery comes on a new connection (with
-- https, after a full TLS handshake: no resumption in wrk), and the rate is
-- the rate of new connections.
local close = os.getenv("BOXHOOK_CLOSE") == "1"

-- BOXHOOK_QUANTILES (scale.sh): a file to write the latency distribution
-- to, as 1000 quantiles (the 0.05th, 0.15th, ... 99.95th percentiles, in
-- microseconds, one a line), so that runs back to back can be merged into
-- one distribution, each quantile standing for a thousandth of its run's
-- requests.
local quantiles = os.getenv("BOXHOOK_QUANTILES")

function setup(thread)
   thread:set("tid", created)
   created = created + 1
   table.insert(threads, thread)
end

function init(args)
   requests = {}
   local path = corpus .. "." .. tid
   local file = assert(io.open(path, "rb"))
   while true do
      local length = file:read("*n")
      if not length then break end
      file:read(1) -- the newline after the length
      local request = file:read(length)
      if close then
         request = request:gsub("\r\n", "\r\nconnection: close\r\n", 1)
      end
      requests[#requests + 1] = request
   end
   file:close()
   if #requests == 0 then
      error("no deliveries for thread " .. tid .. " in " .. path)
   end
   loaded = #requests
   next_request = 0
   sent = 0
end

function request()
   next_request = next_request % #requests + 1
   sent = sent + 1
   return requests[next_request]
end

function done(summary, latency, requests)
   local repeats = 0
   local loaded = 0
   for _, thread in ipairs(threads) do
      local sent = thread:get("sent") or 0
      local count = thread:get("loaded") or 0
      loaded = loaded + count
      if sent > count then
         repeats = repeats + sent - count
      end
   end
   local e = summary.errors
   io.write(string.format(
      "BOXHOOK_RESULT requests=%d duration_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d "
         .. "p50_us=%d p99_us=%d corpus=%d repeats=%d max_us=%d\n",
      summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
      latency:percentile(50), latency:percentile(99), loaded, repeats, latency.max))
   if quantiles and quantiles ~= "" then
      local file = assert(io.open(quantiles, "w"))
      for k = 0, 999 do
         file:write(string.format("%d\n", latency:percentile((k + 0.5) / 10)))
      end
      file:close()
   end
end
