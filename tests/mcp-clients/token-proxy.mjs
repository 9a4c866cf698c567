// A loopback reverse proxy that adds `Authorization: Bearer $MCP_TOKEN` to
// every request it forwards to $TARGET (e.g. http://127.0.0.1:PORT), and
// nothing else: method, path, other headers (Host and Origin included) and
// bodies pass verbatim both ways, and responses (SSE included) stream as they
// arrive. It exists because the conformance suite's server mode takes only a
// URL and cannot send headers (modelcontextprotocol/conformance issue #453).
// Prints `listening http://127.0.0.1:PORT` once it is ready.
import http from "node:http";

const target = new URL(process.env.TARGET);
const token = process.env.MCP_TOKEN;
if (!token) throw new Error("MCP_TOKEN is not set");

const server = http.createServer((req, res) => {
  const headers = { ...req.headers };
  if (!headers.authorization) headers.authorization = `Bearer ${token}`;
  const upstream = http.request(
    {
      host: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url,
      headers,
    },
    (answer) => {
      res.writeHead(answer.statusCode, answer.rawHeaders);
      answer.pipe(res);
    },
  );
  upstream.on("error", (e) => {
    if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
    res.end(`token-proxy: ${e.message}`);
  });
  res.on("close", () => upstream.destroy());
  req.pipe(upstream);
});

server.listen(0, "127.0.0.1", () => {
  console.log(`listening http://127.0.0.1:${server.address().port}`);
});
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => process.exit(0));
}
