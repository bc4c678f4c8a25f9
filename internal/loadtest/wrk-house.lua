-- wrk script for the closed-loop maximum of the key listing (docs/scaling.md):
-- every request is a client's GET /house/{id} of a uniformly random house.
--
--   HOMES_TOKEN=$(curl -s "$URL/dummyLogin?user_type=client" | jq -r .token) \
--   HOMES_HOUSES=250782 \
--   wrk -t2 -c64 -d30s --latency -s internal/loadtest/wrk-house.lua "$URL"
local token = os.getenv("HOMES_TOKEN") or error("set HOMES_TOKEN to a client token")
local houses = tonumber(os.getenv("HOMES_HOUSES") or "") or error("set HOMES_HOUSES to max(houses.id)")
local headers = { ["Authorization"] = "Bearer " .. token }

function init(args)
  -- each wrk thread has its own Lua state: seed each differently
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16))
end

function request()
  return wrk.format("GET", "/house/" .. math.random(1, houses), headers)
end
