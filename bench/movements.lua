-- wrk script for bench/ledger.py: POSTs ledger movements with a unique Idempotency-Key each.
--
-- Environment (set by bench/ledger.py):
--   TOKEN        operator bearer token
--   LOTS         file of "lot_id owner warehouse material lot_code expires_on" lines
--   MODE         "single" (POST /api/v1/movements) or "batch" (POST /api/v1/movements/batch, atomic)
--   BATCH        movements per batch request (default 100)
--   ISSUE_SHARE  fraction of movements that are issues (default 0.5); the rest are receipts
--   RUN          a prefix unique to this wrk run, so keys never repeat across runs
--
-- Issues take an explicit lot_id and 1-5 units (lots hold 1,000,000, so they do not run out);
-- receipts add 1-5 units to an existing lot (same code, warehouse, owner and expiry).
-- The `response` callback counts every non-2xx answer per status; `done` prints one line
--   RESULT {json}
-- with the throughput, latency percentiles and error counts, which bench/ledger.py parses.

local token = os.getenv("TOKEN")
local mode = os.getenv("MODE") or "single"
local batch_size = tonumber(os.getenv("BATCH") or "100")
local issue_share = tonumber(os.getenv("ISSUE_SHARE") or "0.5")
local run = os.getenv("RUN") or tostring(os.time())

-- main-state bookkeeping: every thread, so `done` can read their counters
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

-- per-thread state (each wrk thread has its own Lua state)
local lots = {}
local counter = 0
non2xx = 0
statuses = {}
issues, receipts = 0, 0

function init(args)
  for line in io.lines(os.getenv("LOTS")) do
    local id, owner, wh, mat, code, exp = line:match("^(%S+) (%S+) (%S+) (%S+) (%S+) (%S+)$")
    if id then
      lots[#lots + 1] = {
        issue = '{"kind":"issue","warehouse":"' .. wh .. '","material":"' .. mat .. '","owner":"' .. owner ..
                '","lot_id":"' .. id .. '","reason":"consumption","quantity":"',
        receipt = '{"kind":"receipt","warehouse":"' .. wh .. '","material":"' .. mat .. '","owner":"' .. owner ..
                  '","lot":{"code":"' .. code .. '","expires_on":"' .. exp .. '"},"quantity":"',
      }
    end
  end
  if #lots == 0 then
    error("no lots in " .. tostring(os.getenv("LOTS")))
  end
  math.randomseed(os.time() + 7919 * (thread_id or 0))
end

local function movement()
  local lot = lots[math.random(#lots)]
  local qty = tostring(math.random(1, 5))
  if math.random() < issue_share then
    issues = issues + 1
    return lot.issue .. qty .. '"}'
  end
  receipts = receipts + 1
  return lot.receipt .. qty .. '"}'
end

request = function()
  counter = counter + 1
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = run .. "-" .. (thread_id or 0) .. "-" .. counter,
  }
  if mode == "batch" then
    local items = {}
    for i = 1, batch_size do
      items[i] = movement()
    end
    return wrk.format("POST", "/api/v1/movements/batch", headers,
                      '{"atomic":true,"movements":[' .. table.concat(items, ",") .. "]}")
  end
  return wrk.format("POST", "/api/v1/movements", headers, movement())
end

response = function(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    local k = tostring(status)
    statuses[k] = (statuses[k] or 0) + 1
  end
end

done = function(summary, latency, requests)
  local non2xx_total, issued, received, by_status = 0, 0, 0, {}
  for _, thread in ipairs(threads) do
    non2xx_total = non2xx_total + (thread:get("non2xx") or 0)
    issued = issued + (thread:get("issues") or 0)
    received = received + (thread:get("receipts") or 0)
    local s = thread:get("statuses") or {}
    for k, v in pairs(s) do
      by_status[k] = (by_status[k] or 0) + v
    end
  end
  local parts = {}
  for k, v in pairs(by_status) do
    parts[#parts + 1] = string.format('"%s":%d', k, v)
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"latency_us":{"mean":%.1f,"max":%d,"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d},' ..
    '"non2xx":%d,"status_errors":%d,"by_status":{%s},"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},' ..
    '"movements_generated":{"issue":%d,"receipt":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9),
    non2xx_total, e.status, table.concat(parts, ","), e.connect, e.read, e.write, e.timeout,
    issued, received))
end
