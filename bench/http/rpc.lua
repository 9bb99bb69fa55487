-- wrk script for the X-RPC-Method rows: POST [2,3] to `add`, expecting {"result":5}.
wrk.method = "POST"
wrk.body = "[2,3]"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-RPC-Method"] = "add"
