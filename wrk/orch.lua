-- orch's wrk script: optional HTTP pipelining and a machine-readable summary.
-- By hand: `wrk -t1 -c20 -d5s -s wrk/orch.lua http://127.0.0.1:8000/ -- 16`
-- Arguments after `--`: the pipeline depth (default 1: one request in flight per connection).
-- done() prints one line `ORCH_WRK_JSON {...}` after wrk's own text; latencies in microseconds.

function init(args)
   local depth = tonumber(args[1]) or 1
   if depth > 1 then
      -- Several complete requests in one write: wrk counts each response, and records one
      -- latency per batch (from the write to the last response of the batch).
      local batch = {}
      for i = 1, depth do
         batch[i] = wrk.format()
      end
      local payload = table.concat(batch)
      request = function()
         return payload
      end
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   local quantiles = {}
   for _, p in ipairs({ 50, 75, 90, 99, 99.9, 99.99 }) do
      quantiles[#quantiles + 1] = string.format('"%s": %.17g', tostring(p), latency:percentile(p))
   end
   io.write(string.format(
      'ORCH_WRK_JSON {"duration_us": %d, "requests": %d, "bytes": %d, '
         .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
         .. '"latency_us": {"min": %.17g, "max": %.17g, "mean": %.17g, "stdev": %.17g, '
         .. '"percentiles": {%s}}}\n',
      summary.duration, summary.requests, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.max, latency.mean, latency.stdev,
      table.concat(quantiles, ", ")))
end
