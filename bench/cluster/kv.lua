-- wrk script: KV through a function, one operation per request. OP=get reads key k1…k100
-- (written beforehand); OP=put writes them; OP=none answers without touching KV (baseline).
local op = os.getenv("OP") or "get"
local i = 0

function request()
  i = i + 1
  local path = "/kv/?op=" .. op .. "&k=k" .. (i % 100 + 1)
  if op == "put" then
    return wrk.format("PUT", path)
  end
  return wrk.format("GET", path)
end
