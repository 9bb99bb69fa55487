# workerd side of bench/http: one front worker with a Worker Loader binding. run.sh starts it as
#   workerd serve --experimental bench/http/workerd.capnp --socket-addr http=127.0.0.1:PORT
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [ (name = "front", worker = .front) ],
  sockets = [ (name = "http", address = "127.0.0.1:8790", http = (), service = "front") ],
);

const front :Workerd.Worker = (
  modules = [ (name = "front.js", esModule = embed "front.js") ],
  compatibilityDate = "2025-06-01",
  bindings = [ (name = "LOADER", workerLoader = ()) ],
);
