-- wrk script for `make bench-api`: POST a fixed JSON body, optional headers, and print
-- the summary as one JSON line for bench/api_submit.py.
--
-- Environment:
--   BENCH_BODY_FILE    file holding the request body (JSON)
--   BENCH_AUTH         value of the Authorization header (omitted when empty)
--   BENCH_IDEMPOTENCY  "1": a unique Idempotency-Key header on every request
--   BENCH_TAG          a run tag mixed into the idempotency keys (unique per run)

local body_file = os.getenv("BENCH_BODY_FILE")
local auth = os.getenv("BENCH_AUTH") or ""
local idempotent = os.getenv("BENCH_IDEMPOTENCY") == "1"
local tag = os.getenv("BENCH_TAG") or tostring(os.time())

local body = "{}"
if body_file and body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  body = f:read("*a")
  f:close()
end

local thread_counter = 0
function setup(thread)
  thread_counter = thread_counter + 1
  thread:set("thread_id", thread_counter)
end

local headers = { ["Content-Type"] = "application/json" }
if auth ~= "" then headers["Authorization"] = auth end

local fixed_request = nil
local n = 0

function init(args)
  -- wrk.headers already holds Host (set by wrk before init); add ours to it.
  for k, v in pairs(headers) do wrk.headers[k] = v end
  headers = wrk.headers
  wrk.method = "POST"
  wrk.body = body
  if not idempotent then
    fixed_request = wrk.format("POST", nil, headers, body)
  end
end

function request()
  if fixed_request then return fixed_request end
  n = n + 1
  headers["Idempotency-Key"] = string.format("%s-%d-%d", tag, thread_id or 0, n)
  return wrk.format("POST", nil, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"stdev":%.1f,' ..
    '"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max, latency.stdev,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
