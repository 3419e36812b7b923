-- wrk driver for `just bench` (bench/run.py sets the environment):
--   BENCH_DATA      a Lua file returning {users = {{auth = "Bearer ...", ids = {...}}, ...},
--                   writers = {{auth = "Bearer ..."}, ...}}
--   BENCH_SCENARIO  list | get | create | update | toggle | mix
--   BENCH_QUERY     query string appended to list requests (e.g. "?limit=20"), default none
-- Every response whose status is not the expected success (200, 201 for create, 204) is counted as
-- an error; done() prints one machine-readable BENCH_RESULT line with the figures.

local data = dofile(os.getenv("BENCH_DATA"))
local scenario = os.getenv("BENCH_SCENARIO") or "list"
local query = os.getenv("BENCH_QUERY") or ""

local threads = {}

function setup(thread)
   thread:set("tid", #threads + 1)
   table.insert(threads, thread)
end

local users, writers
local n = 0

function init(args)
   math.randomseed((tid or 1) * 7919 + os.time())
   users, writers = data.users, data.writers
   bad = 0
   statuses = {}
end

local function pick(list)
   return list[math.random(#list)]
end

local function list_request(user)
   return wrk.format("GET", "/api/tasks" .. query, {["Authorization"] = user.auth})
end

local function get_request(user)
   return wrk.format("GET", "/api/tasks/" .. pick(user.ids), {["Authorization"] = user.auth})
end

local function create_request()
   n = n + 1
   local body = string.format('{"title":"bench task %d-%d","description":"created by wrk"}', tid, n)
   return wrk.format("POST", "/api/tasks",
      {["Authorization"] = pick(writers).auth, ["Content-Type"] = "application/json"}, body)
end

local function update_request(user)
   n = n + 1
   local body = string.format('{"title":"updated %d-%d","description":"changed by wrk","completed":%s}',
      tid, n, n % 2 == 0 and "true" or "false")
   return wrk.format("PUT", "/api/tasks/" .. pick(user.ids),
      {["Authorization"] = user.auth, ["Content-Type"] = "application/json"}, body)
end

local function toggle_request(user)
   return wrk.format("PATCH", "/api/tasks/" .. pick(user.ids) .. "/complete", {["Authorization"] = user.auth})
end

local function mix_request(user)
   local r = math.random(100)
   if r <= 60 then return list_request(user)
   elseif r <= 75 then return get_request(user)
   elseif r <= 85 then return create_request()
   elseif r <= 95 then return toggle_request(user)
   else return update_request(user) end
end

local builders = {
   list = list_request, get = get_request, create = create_request,
   update = update_request, toggle = toggle_request, mix = mix_request,
}
local build = builders[scenario]

function request()
   return build(pick(users))
end

function response(status, headers, body)
   if status ~= 200 and status ~= 201 and status ~= 204 then
      bad = bad + 1
      statuses[status] = (statuses[status] or 0) + 1
   end
end

function done(summary, latency, requests)
   local total_bad = 0
   local by_status = {}
   for _, thread in ipairs(threads) do
      total_bad = total_bad + (thread:get("bad") or 0)
      for status, count in pairs(thread:get("statuses") or {}) do
         by_status[status] = (by_status[status] or 0) + count
      end
   end
   local parts = {}
   for status, count in pairs(by_status) do
      table.insert(parts, string.format("%s:%d", status, count))
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
      '"socket_errors":%d,"timeouts":%d,"bad_status":%d,"statuses":"%s"}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, e.connect + e.read + e.write, e.timeout, total_bad,
      table.concat(parts, ",")))
end
