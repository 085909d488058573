-- wrk script for bench/ledger.py. Environment: TOKEN, LOTS (file of "lot_id code warehouse" lines),
-- MODE ("single" or "batch"), DELAY_MS (mean think time per connection; 0 = closed loop).
local lots, counter, thread_id = {}, 0, 0
local token, mode = os.getenv("TOKEN"), os.getenv("MODE") or "single"
local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")

function setup(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end

function init(args)
  for line in io.lines(os.getenv("LOTS")) do
    local id, code, wh = line:match("(%S+) (%S+) (%S+)")
    table.insert(lots, {id = id, code = code, wh = wh})
  end
  math.randomseed(os.time() * 1000 + (thread_id or 0))
end

local function movement()
  local lot = lots[math.random(#lots)]
  if math.random() < 0.5 then
    return '{"kind":"issue","lot_id":"' .. lot.id .. '","owner":"BENCH-OWNER","quantity":"1"}'
  end
  return '{"kind":"receipt","warehouse":"' .. lot.wh .. '","material":"BENCH-DIESEL","owner":"BENCH-OWNER",' ..
         '"quantity":"1","lot":{"code":"' .. lot.code .. '","expires_on":"2035-01-01"}}'
end

request = function()
  counter = counter + 1
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token,
                   ["Idempotency-Key"] = (thread_id or 0) .. "-" .. counter .. "-" .. math.random(1, 2^30)}
  if mode == "batch" then
    local items = {}
    for i = 1, 100 do items[i] = movement() end
    return wrk.format("POST", "/api/v1/movements/batch", headers,
                      '{"atomic":true,"movements":[' .. table.concat(items, ",") .. ']}')
  end
  return wrk.format("POST", "/api/v1/movements", headers, movement())
end

function delay()
  if delay_ms <= 0 then return 0 end
  return -delay_ms * math.log(1 - math.random())
end

done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
