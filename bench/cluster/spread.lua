-- wrk script: spread requests over FUNCTIONS functions named PREFIX-1 … PREFIX-N, so
-- nginx's consistent hash on the function id sends them to every node. MODE=rpc posts
-- [2,3] to `add` with X-RPC-Method (expects {"result":5}); otherwise a plain GET.
local n = tonumber(os.getenv("FUNCTIONS") or "12")
local prefix = os.getenv("PREFIX") or "hello"
local rpc = os.getenv("MODE") == "rpc"
local i = 0
local headers = { ["Content-Type"] = "application/json", ["X-RPC-Method"] = "add" }

function setup(thread)
  thread:set("offset", math.random(n))
end

function request()
  i = i + 1
  local path = "/" .. prefix .. "-" .. ((i + (offset or 0)) % n + 1) .. "/"
  if rpc then
    return wrk.format("POST", path, headers, "[2,3]")
  end
  return wrk.format("GET", path)
end
