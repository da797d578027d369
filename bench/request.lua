-- One benchmark scenario for wrk: the method, JSON body and API key come from the environment
-- (BENCH_METHOD, BENCH_BODY, BENCH_KEY); the path is in the URL. With BENCH_IDS (ids separated by
-- spaces), the requests name them in turn: `<path>?entity_id=<id>`.
wrk.method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY") or ""
if body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
local key = os.getenv("BENCH_KEY") or ""
if key ~= "" then
  wrk.headers["uni-api-key"] = key
end

local ids = {}
for id in string.gmatch(os.getenv("BENCH_IDS") or "", "%S+") do
  ids[#ids + 1] = id
end
if #ids > 0 then
  local sent = 0
  function request()
    sent = sent + 1
    return wrk.format(nil, wrk.path .. "?entity_id=" .. ids[(sent % #ids) + 1])
  end
end

-- One machine-readable line for bench/run.py; latencies in microseconds.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d,"mean":%.1f,"max":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
