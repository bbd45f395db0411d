-- wrk script for benches/load/scale.sh: admin readers. Each connection asks
-- for /metrics, / (the dashboard) and /summary.json in turn, as fast as the
-- admin listener answers, and the final report gives what they got.

local paths = { "/metrics", "/", "/summary.json" }
local next_path = 0

function request()
   next_path = next_path % #paths + 1
   return wrk.format("GET", paths[next_path])
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "BOXHOOK_READERS requests=%d duration_us=%d non2xx=%d connect=%d read=%d write=%d "
         .. "timeout=%d p50_us=%d p99_us=%d max_us=%d\n",
      summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
      latency:percentile(50), latency:percentile(99), latency.max))
end
