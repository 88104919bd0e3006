// A caller traced by Opik's own TypeScript SDK (npm `opik`) that runs lode
// as part of its trace (test_opik_sdk_caller.py):
//   node opik_caller.mjs NODE_MODULES_DIR LODE PIPELINE DB
// Inside a tracked function it takes getDistributedTraceHeaders() and runs
// `lode run --trace-context` with them, first crashing at the pipeline's
// second step (LODE_TEST_CRASH_AT), then again without any context: the
// second run recovers the workflow, which must stay in the caller's trace.
// Configured by OPIK_URL_OVERRIDE / OPIK_PROJECT_NAME like lode. Prints one
// JSON line: the headers and both exit statuses.
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";

const [modules, lode, pipeline, db] = process.argv.slice(2);
const require = createRequire(path.join(modules, "x.js"));
const { track, getDistributedTraceHeaders, flushAll } = require("opik");

const callLode = track({ name: "node_caller", type: "general" }, async (topic) => {
  const headers = getDistributedTraceHeaders();
  const env = { ...process.env, LODE_TEST_CRASH_AT: "second_step:1" };
  const first = spawnSync(lode, ["run", "--db", db, "--trace-context",
                                 JSON.stringify(headers), pipeline, topic], { env, encoding: "utf8" });
  delete env.LODE_TEST_CRASH_AT;
  const second = spawnSync(lode, ["run", "--db", db, pipeline, topic],
                           { env, encoding: "utf8" });
  return { headers, first: first.status ?? first.signal, second: second.status,
           stderr: first.stderr + second.stderr };
});

const out = await callLode("docs");
await flushAll();
console.log(JSON.stringify(out));
