// Peer for bench_text.sh: @langchain/textsplitters on FILE, best of REPS.
// Prints: bytes chunks seconds MB/s (same format as bench_text_split).
//   node bench_text_split.cjs FILE SIZE OVERLAP REPS codepoints|utf16 [CHUNKS]
// With CHUNKS, the chunk texts are written there, each followed by "\0", for
// a chunk-for-chunk comparison with lode's.
"use strict";
const fs = require("fs");
const { RecursiveCharacterTextSplitter } = require("@langchain/textsplitters");
const [file, size, overlap, reps, mode, out] = process.argv.slice(2);
const text = fs.readFileSync(file, "utf8");
const bytes = Buffer.byteLength(text);
const opts = { chunkSize: +size, chunkOverlap: +overlap };
if (mode === "codepoints") opts.lengthFunction = (s) => [...s].length;
(async () => {
  const sp = new RecursiveCharacterTextSplitter(opts);
  let best = Infinity, chunks = [];
  for (let r = 0; r < +reps; r++) {
    const t0 = process.hrtime.bigint();
    chunks = await sp.splitText(text);
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    if (dt < best) best = dt;
  }
  if (out) fs.writeFileSync(out, chunks.map((c) => c + "\0").join(""));
  console.log(`${bytes} ${chunks.length} ${best.toFixed(6)} ${(bytes / best / 1e6).toFixed(1)}`);
})();
