// A local HTTP sink for bench_trace.sh: answers every request 204 without
// parsing it; counts requests, bytes and items (occurrences of "start_time",
// a byte search). Node's HTTP server, so that the sink is not what limits a
// client sending many small requests.
//   node trace_sink.mjs PORT_FILE      (GET /_stats -> JSON; SIGTERM stops)
import http from "node:http";
import fs from "node:fs";

const stats = { requests: 0, bytes: 0, items: 0 };
const needle = Buffer.from('"start_time"');
const server = http.createServer((req, res) => {
  if (req.method === "GET") {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify(stats));
    return;
  }
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    stats.requests++;
    stats.bytes += body.length;
    for (let i = body.indexOf(needle); i >= 0; i = body.indexOf(needle, i + 1)) stats.items++;
    res.writeHead(204);
    res.end();
  });
});
server.keepAliveTimeout = 60000;
server.listen(0, "127.0.0.1", () => {
  const f = process.argv[2];
  fs.writeFileSync(f + ".tmp", String(server.address().port));
  fs.renameSync(f + ".tmp", f);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
