import { Hono } from "hono";
import type { Context, Next } from "hono";
import ms from "ms";
import { nanoid } from "nanoid";
import { Buffer } from "node:buffer";
// The npm package, not Node's built-in of the same name (the trailing slash says so, as in Node).
import decoder from "string_decoder/";
import { decodeSample } from "./src/decode.js";
import { User } from "./src/schema";

type Env = { Bindings: { GREETING: string } };

enum Header {
  Served = "x-served-by",
}

const app = new Hono<Env>();

// Middleware: every answer says who served it.
app.use("*", async (c: Context, next: Next) => {
  await next();
  c.header(Header.Served, "hono");
});

app.get("/", (c) => c.text(`${c.env.GREETING} from hono`));

app.get("/users/:id", (c) => c.json({ id: c.req.param("id"), q: c.req.query("q") ?? null }));

app.post("/users", async (c) => {
  const parsed = User.safeParse(await c.req.json());
  if (!parsed.success) {
    return c.json({ error: parsed.error.issues.map((i) => i.path.join(".")) }, 400);
  }
  const user: User = parsed.data;
  return c.json({ created: user.name, age: user.age }, 201);
});

// CommonJS-only package (ms) and a package chosen by its `browser` export condition (nanoid).
app.get("/ms/:text", (c) => c.json({ ms: ms(c.req.param("text")) }));
app.get("/id", (c) => c.json({ length: nanoid().length }));

app.get("/boom", () => {
  throw new Error("boom at index.ts line 43");
});

// A CommonJS package that requires Node's `buffer` (string_decoder, through safe-buffer).
app.get("/decode", (c) => c.json(decodeSample(decoder.StringDecoder, Buffer)));

export default app;
