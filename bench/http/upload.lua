-- wrk script: POST /v1/documents with a unique multipart file per request, so that every
-- request creates a document (identical bytes would only find the existing one).
--
--   wrk -t2 -c16 -d30s --latency -s bench/http/upload.lua http://127.0.0.1:8080 -- 1048576 [pace_ms]
--
-- Arguments: the file size in bytes (default 1 MiB), and an optional mean pause in
-- milliseconds between one connection's requests, drawn uniformly from 0..2*pace (0: as fast
-- as answers come; with a pause, the rate is at most connections * 1000 / pace_ms per second). Prints a JSON line with the latency
-- percentiles and the count of answers other than 202.

local boundary = "docket-bench-boundary"
local size = 1048576
local pace = 0
local counter = 0
local head, rest, tail
local TAG = 48 -- the unique line at the start of each file, padded to this width
local not_202 = 0
local threads = {}
local thread_id = 0

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
  table.insert(threads, thread)
end

function init(args)
  size = tonumber(args[1]) or size
  pace = tonumber(args[2]) or 0
  local line = "the harbour master logs every ship that passes the light\n"
  -- Built once: a request only joins the unique line between them (one copy per request).
  rest = string.rep(line, math.floor(size / #line) + 1):sub(TAG + 1, size)
  head = "--" .. boundary .. "\r\n"
    .. "Content-Disposition: form-data; name=\"file\"; filename=\"upload.txt\"\r\n"
    .. "Content-Type: text/plain\r\n\r\n"
  tail = "\r\n--" .. boundary .. "--\r\n"
end

function request()
  counter = counter + 1
  local tag = string.format("upload %d %d %d", tid, counter, math.random(1, 1e9))
  tag = tag .. string.rep(" ", TAG - 1 - #tag) .. "\n"
  local body = head .. tag .. rest .. tail
  return wrk.format("POST", "/v1/documents",
    { ["Content-Type"] = "multipart/form-data; boundary=" .. boundary }, body)
end

function response(status, headers, body)
  if status ~= 202 then
    not_202 = not_202 + 1
  end
end

function delay()
  -- Uniform jitter around the pause, so that connections do not stay in lockstep.
  if pace == 0 then
    return 0
  end
  return math.random(0, 2 * pace)
end

function done(summary, latency, requests)
  local other = 0
  for _, t in ipairs(threads) do
    other = other + (t:get("not_202") or 0)
  end
  io.write(string.format(
    '{"requests": %d, "seconds": %.2f, "per_sec": %.1f, "not_202": %d, "errors": %d, '
      .. '"p50_ms": %.2f, "p90_ms": %.2f, "p99_ms": %.2f, "max_ms": %.2f}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6), other,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
