// Reference for bench_trace.sh: Opik's own TypeScript SDK (npm `opik`) sending
// the same shape of trees as lode_trace_fill to the same local sink.
//   node trace_opik_sdk.mjs NODE_MODULES_DIR TRACES SPANS_PER_TRACE
// Configured by OPIK_URL_OVERRIDE like lode. Prints one JSON line.
import { createRequire } from "node:module";
import path from "node:path";

const [modules, ntraces, nspans] = [process.argv[2], +process.argv[3], +process.argv[4]];
const require = createRequire(path.join(modules, "x.js"));
const { Opik } = require("opik");

const client = new Opik({
  apiUrl: process.env.OPIK_URL_OVERRIDE,
  projectName: "Default Project",
  apiKey: "",
  workspaceName: "default",
});
const t0 = process.hrtime.bigint();
for (let t = 0; t < ntraces; t++) {
  const trace = client.trace({ name: "fill_workflow", input: { folder: "docs" },
                               metadata: { phase: "TEST" },
                               tags: ["execution:workflow", "phase:TEST"] });
  const root = trace.span({ name: "fill_workflow", type: "general", input: { input: [1, 2, 3] } });
  const spans = [root];
  for (let s = 1; s < nspans; s++) {
    spans.push(trace.span({ name: `step_${s}`, type: s % 4 === 3 ? "tool" : "general",
                            parentSpanId: (s < 3 ? root : spans[1]).data.id,
                            input: { input: [1, 2, 3] }, metadata: { step: 1 } }));
  }
  for (let s = nspans - 1; s >= 0; s--) {
    spans[s].update({ output: { n: s, pass: 1 } });
    spans[s].end();
  }
  trace.update({ output: { files: 3 } });
  trace.end();
}
const t1 = process.hrtime.bigint();
await client.flush();
const t2 = process.hrtime.bigint();
console.log(JSON.stringify({ traces: ntraces, spans: ntraces * nspans,
                             record_s: Number(t1 - t0) / 1e9, flush_s: Number(t2 - t1) / 1e9 }));
