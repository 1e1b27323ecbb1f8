-- orch's wrk script: optional HTTP pipelining and a machine-readable summary.
-- By hand: `wrk -t1 -c20 -d5s -s wrk/orch.lua http://127.0.0.1:8000/ -- 16`
-- Arguments after `--`: the pipeline depth (default 1: one request in flight per connection).
-- done() prints one line `ORCH_WRK_JSON {...}` after wrk's own text; latencies in microseconds,
-- with wrk's whole latency histogram as [value, count] pairs (one per populated microsecond).

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

-- wrk's `latency(i)` rescans the histogram from its minimum on every call, so walking all
-- populated buckets that way costs (buckets x range): seconds for a long tail. Under LuaJIT
-- (Debian's wrk) the FFI reads wrk's own `stats` struct (src/stats.h) in one pass instead.
local function histogram_ffi(latency)
   local ok, ffi = pcall(require, "ffi")
   if not ok then
      return nil
   end
   pcall(ffi.cdef, [[
      typedef struct {
         uint64_t count; uint64_t limit; uint64_t min; uint64_t max; uint64_t data[];
      } orch_wrk_stats;
   ]])
   local s = ffi.cast("orch_wrk_stats **", latency)[0]
   local pairs = {}
   if tonumber(s.count) == 0 then
      return pairs
   end
   for value = tonumber(s.min), tonumber(s.max) do
      local count = s.data[value]
      if count ~= 0 then
         pairs[#pairs + 1] = string.format("[%d, %d]", value, tonumber(count))
      end
   end
   return pairs
end

local function histogram_api(latency)
   local pairs = {}
   for i = 1, #latency do
      local value, count = latency(i)
      pairs[#pairs + 1] = string.format("[%d, %d]", value, count)
   end
   return pairs
end

function done(summary, latency, requests)
   local e = summary.errors
   local quantiles = {}
   for _, p in ipairs({ 50, 75, 90, 99, 99.9, 99.99 }) do
      quantiles[#quantiles + 1] = string.format('"%s": %.17g', tostring(p), latency:percentile(p))
   end
   local started = os.clock()
   local method = "ffi"
   local buckets = histogram_ffi(latency)
   if buckets == nil then
      method = "api"
      buckets = histogram_api(latency)
   end
   local seconds = os.clock() - started
   io.write(string.format(
      'ORCH_WRK_JSON {"duration_us": %d, "requests": %d, "bytes": %d, '
         .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
         .. '"latency_us": {"min": %.17g, "max": %.17g, "mean": %.17g, "stdev": %.17g, '
         .. '"percentiles": {%s}}, '
         .. '"histogram": {"method": "%s", "seconds": %.6f, "us": [%s]}}\n',
      summary.duration, summary.requests, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.max, latency.mean, latency.stdev,
      table.concat(quantiles, ", "),
      method, seconds, table.concat(buckets, ", ")))
end
