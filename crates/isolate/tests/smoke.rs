use capnweb::Value;
use isolate::{Isolate, IsolateConfig};

#[tokio::test]
async fn smoke() {
    let code = r#"
      import { RpcTarget } from "cloudflare:workers";
      class MathTarget extends RpcTarget { async add(a, b) { return a + b; } }
      export default { rpc: MathTarget };
    "#;
    let iso = Isolate::new(IsolateConfig::single("math", code)).await.unwrap();
    assert!(iso.has_rpc_surface());
    let sum = iso.rpc_target().call("add", vec![1.into(), 2.into()]).await.unwrap();
    assert_eq!(sum.as_f64(), Some(3.0));
    let _ = Value::Null;
}
