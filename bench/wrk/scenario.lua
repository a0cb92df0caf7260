-- One wrk script for every scenario of `manage.py bench`.
--
-- wrk ... -s bench/wrk/scenario.lua URL -- <prefix>
-- Thread n reads its requests from <prefix>.<n>.tsv, one a line:
--   METHOD <tab> PATH <tab> TOKEN or - <tab> JSON BODY or -
-- and sends them in order, from the top again when it runs out (a write then repeats and
-- answers 409, which shows up as non-2xx). The Python side gives each thread its own users.
-- response() sums the X-Query-Count header and counts non-2xx; done() prints one line
-- "WRK_JSON {...}" with the latency percentiles and each thread's counters.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local file = args[1] .. "." .. id .. ".tsv"
  lines = {}
  for line in io.lines(file) do
    local method, path, token, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    local headers = { ["X-Forwarded-Proto"] = "https", ["Accept"] = "application/json" }
    if token ~= "-" then headers["Authorization"] = "Bearer " .. token end
    if body == "-" then
      body = nil
    else
      headers["Content-Type"] = "application/json"
    end
    lines[#lines + 1] = wrk.format(method, path, headers, body)
  end
  index = 0
  sent = 0
  responses = 0
  queries = 0
  non2xx = 0
  statuses = {}
end

function request()
  index = index + 1
  if index > #lines then index = 1 end
  sent = sent + 1
  return lines[index]
end

function response(status, headers, body)
  responses = responses + 1
  local counted = headers["X-Query-Count"]
  if counted then queries = queries + tonumber(counted) end
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    local key = tostring(status)
    statuses[key] = (statuses[key] or 0) + 1
  end
end

local function encode(value)
  if type(value) == "table" then
    local parts = {}
    for k, v in pairs(value) do
      parts[#parts + 1] = string.format("%q:%s", tostring(k), encode(v))
    end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return tostring(value)
end

function done(summary, latency, requests)
  local per_thread = {}
  for _, thread in ipairs(threads) do
    per_thread[#per_thread + 1] = encode({
      id = thread:get("id"), sent = thread:get("sent"), responses = thread:get("responses"),
      queries = thread:get("queries"), non2xx = thread:get("non2xx"),
      statuses = thread:get("statuses"),
    })
  end
  io.write("WRK_JSON " .. encode({
    requests = summary.requests, duration_us = summary.duration,
    p50_us = latency:percentile(50), p99_us = latency:percentile(99),
    max_us = latency.max, errors = summary.errors,
  }):sub(1, -2) .. ',"threads":[' .. table.concat(per_thread, ",") .. "]}\n")
end
