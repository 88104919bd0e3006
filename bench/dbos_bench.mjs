// The DBOS side of the comparison (bench/bench_dbos.sh): DBOS Transact's
// TypeScript SDK against the PostgreSQL system database given in
// DBOS_SYSTEM_DATABASE_URL. It runs WARMUP workflows, then times N
// sequential workflows of STEPS no-op steps (each step checkpointed by DBOS)
// and prints one JSON line: {"workflows":N,"steps":..,"seconds":..,"steps_per_s":..}.
//
// Plain JS so no compiler is needed; bench_dbos.sh copies this file next to
// its node_modules (bench/.work/dbos) so that the SDK import resolves there.
import { DBOS } from '@dbos-inc/dbos-sdk';

function intEnv(name, dflt) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < 0) {
    throw new Error(`${name} must be a non-negative integer, got '${raw}'`);
  }
  return v;
}

const url = process.env.DBOS_SYSTEM_DATABASE_URL;
if (!url) {
  console.error('dbos_bench: set DBOS_SYSTEM_DATABASE_URL (postgres://user@host:port/db)');
  process.exit(2);
}
const n = intEnv('N', 100);
const steps = intEnv('STEPS', 10);
const warmup = intEnv('WARMUP', 10);

// A registered step, as a DBOS user would write one: called inside a
// workflow, DBOS records its output before the workflow goes on.
const noop = DBOS.registerStep(async () => {}, { name: 'noop' });

const noop10 = DBOS.registerWorkflow(
  async (count) => {
    for (let i = 0; i < count; i++) await noop();
    return count;
  },
  { name: 'noop10' },
);

DBOS.setConfig({ name: 'lode-dbos-bench', systemDatabaseUrl: url, logLevel: 'warn' });
await DBOS.launch();
let status = 0;
try {
  for (let i = 0; i < warmup; i++) await noop10(steps);

  const t0 = process.hrtime.bigint();
  let done = 0;
  for (let i = 0; i < n; i++) done += await noop10(steps);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;

  if (done !== n * steps) throw new Error(`ran ${done} steps, expected ${n * steps}`);
  console.log(JSON.stringify({ workflows: n, steps: done, seconds, steps_per_s: done / seconds }));
} catch (e) {
  console.error(`dbos_bench: ${e?.stack ?? e}`);
  status = 1;
} finally {
  await DBOS.shutdown();
}
process.exit(status);
