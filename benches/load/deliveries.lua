-- wrk script for benches/load/run.sh: replays pre-signed Box deliveries.
--
-- Reads $BOXHOOK_CORPUS (written by `sign_corpus load`: one delivery per
-- line, "delivery-id TAB timestamp TAB primary TAB secondary TAB body").
-- Thread t of $BOXHOOK_THREADS takes lines t, t+N, t+2N, ... so no two
-- threads send the same event; each thread formats its requests once, up
-- front, and then only cycles through them. When a thread runs out it
-- starts over (those repeats are duplicates to boxhook) and the final
-- report says how many requests that was.

local corpus = os.getenv("BOXHOOK_CORPUS")
local nthreads = tonumber(os.getenv("BOXHOOK_THREADS") or "1")
local threads = {}
local created = 0

function setup(thread)
   thread:set("tid", created)
   created = created + 1
   table.insert(threads, thread)
end

function init(args)
   requests = {}
   local n = 0
   for line in io.lines(corpus) do
      if n % nthreads == tid then
         local id, ts, primary, secondary, body =
            line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
         requests[#requests + 1] = wrk.format("POST", "/", {
            ["Host"] = wrk.host .. ":" .. wrk.port,
            ["BOX-DELIVERY-ID"] = id,
            ["BOX-DELIVERY-TIMESTAMP"] = ts,
            ["BOX-SIGNATURE-PRIMARY"] = primary,
            ["BOX-SIGNATURE-SECONDARY"] = secondary,
            ["BOX-SIGNATURE-VERSION"] = "1",
            ["BOX-SIGNATURE-ALGORITHM"] = "HmacSHA256",
            ["Content-Type"] = "application/json; charset=UTF-8",
            ["User-Agent"] = "Box-WH-Client/0.1",
         }, body)
      end
      n = n + 1
   end
   if #requests == 0 then
      error("no deliveries for thread " .. tid .. " in " .. tostring(corpus))
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
         .. "p50_us=%d p99_us=%d corpus=%d repeats=%d\n",
      summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
      latency:percentile(50), latency:percentile(99), loaded, repeats))
end
