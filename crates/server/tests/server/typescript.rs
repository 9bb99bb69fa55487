//! TypeScript deployed as it is: the server builds it (types stripped line for line), keeps
//! the sources beside what runs, and refuses what does not build with `file:line:col`.

use serde_json::json;

use crate::common::TestServer;

const APP_TS: &str = r#"import { helper, type Shape } from "./lib";
import type { Unused } from "./lib";

enum Level { Low = 1, High }

interface Reply {
  level: Level;
  area: number;
}

class Api {
  constructor(private readonly factor: number) {}
  area(shape: Shape): number {
    return helper(shape) * this.factor;
  }
  fail(): never {
    throw new Error("from line 17");
  }
}

export default {
  async fetch(request: Request): Promise<Response> {
    const api = new Api(2);
    const url = new URL(request.url);
    if (url.pathname === "/fail") {
      try {
        api.fail();
      } catch (e) {
        return new Response((e as Error).stack ?? "");
      }
    }
    const reply = { level: Level.High, area: api.area({ w: 3, h: 4 }) } satisfies Reply;
    return Response.json(reply);
  },
};
"#;

const LIB_TS: &str = r#"export type Shape = { w: number; h: number };
export interface Unused { x: string }
export function helper<T extends Shape>(s: T): number {
  return s.w * s.h;
}
"#;

#[tokio::test]
async fn typescript_modules_deploy_as_they_are_and_keep_their_lines() {
    let s = TestServer::start_js().await;
    s.deploy(
        "ts-app",
        json!({ "mainModule": "index.ts", "modules": { "index.ts": APP_TS, "lib.ts": LIB_TS } }),
    )
    .await;
    let r = s.request("GET", "/ts-app/", &[], "").await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json(), json!({ "level": 2, "area": 24 }));
    // The stack names the TypeScript file and the line the throw is on.
    let r = s.request("GET", "/ts-app/fail", &[], "").await;
    let stack = String::from_utf8_lossy(&r.body).into_owned();
    assert!(stack.contains("at fail (index.ts:17:"), "{stack}");
    assert!(stack.contains("at fetch (index.ts:27:"), "{stack}");
    // The sources are stored beside what runs.
    let got = s
        .admin("GET", "/_admin/functions/ts-app", None)
        .await
        .json();
    assert_eq!(got["bundle"]["sources"]["index.ts"]["ts"], json!(APP_TS));
    assert!(got["bundle"]["modules"]["index.ts"]["js"].is_string());
}

#[tokio::test]
async fn a_typescript_syntax_error_fails_the_deploy_with_file_line_and_column() {
    let s = TestServer::start_js().await;
    let r = s
        .admin(
            "PUT",
            "/_admin/functions/broken",
            Some(json!({
                "mainModule": "index.ts",
                "modules": { "index.ts": "import './lib';\nexport default {};\n", "lib.ts": "const a = 1;\nconst b: = 2;\n" }
            })),
        )
        .await;
    assert_eq!(r.status, 400);
    let body = r.json();
    let msg = body["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("lib.ts:2:"), "{body}");
    assert!(msg.contains("const b: = 2;"), "{body}");
    // Nothing was deployed.
    let r = s.admin("GET", "/_admin/functions/broken", None).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn an_unresolvable_import_and_a_node_builtin_fail_the_deploy_naming_file_and_specifier() {
    let s = TestServer::start_js().await;
    for (src, needles) in [
        (
            "import x from './nope';\nexport default {};",
            ["index.ts", "\"./nope\""],
        ),
        (
            "import fs from 'node:fs';\nexport default {};",
            ["index.ts", "\"node:fs\""],
        ),
        (
            "import { z } from 'zod';\nexport default {};",
            ["index.ts", "\"zod\""],
        ),
    ] {
        let r = s
            .admin(
                "PUT",
                "/_admin/functions/bad",
                Some(json!({ "mainModule": "index.ts", "modules": { "index.ts": src } })),
            )
            .await;
        assert_eq!(r.status, 400, "{src}");
        let body = r.json();
        let msg = body["error"]["message"].as_str().unwrap_or_default();
        for n in needles {
            assert!(msg.contains(n), "{src}: {msg} should mention {n}");
        }
    }
    assert_eq!(
        s.admin("GET", "/_admin/functions/bad", None).await.status,
        404
    );
}
