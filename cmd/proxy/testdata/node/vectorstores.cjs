// Files and vector stores through the official Node SDK (issue 11), run by
// TestVectorStoresE2ENode: files.create, vectorStores.create,
// fileBatches.uploadAndPoll, vectorStores.search, files.delete, and the
// paginated lists. Prints JSON.
const OpenAI = require("openai");
const { toFile } = require("openai");

async function main() {
  const client = new OpenAI({ baseURL: process.env.PROXY_URL + "/v1", apiKey: process.env.PROXY_KEY, maxRetries: 0 });
  const docs = JSON.parse(process.env.DOCS);
  const single = await client.files.create({
    file: await toFile(Buffer.from(docs["cats.txt"]), "cats.txt"),
    purpose: "assistants",
  });
  const vs = await client.vectorStores.create({ name: "node-docs", file_ids: [single.id] });
  const files = [];
  for (const name of ["rockets.txt", "bread.md"]) {
    files.push(await toFile(Buffer.from(docs[name]), name));
  }
  const started = Date.now();
  const batch = await client.vectorStores.fileBatches.uploadAndPoll(vs.id, { files });
  const pollMs = Date.now() - started;
  const page = await client.vectorStores.search(vs.id, { query: "rocket engine thrust", max_num_results: 3 });
  const results = [];
  for await (const r of page) {
    results.push({ file_id: r.file_id, filename: r.filename, score: r.score, text: r.content[0].text });
  }
  const listed = [];
  for await (const f of client.vectorStores.files.list(vs.id, { limit: 1 })) {
    listed.push(f.id);
  }
  const allFiles = [];
  for await (const f of client.files.list({ limit: 2 })) {
    allFiles.push(f.id);
  }
  const deleted = await client.files.delete(single.id);
  const after = await client.vectorStores.retrieve(vs.id);
  let missing = 0;
  try {
    await client.files.retrieve(single.id);
  } catch (err) {
    missing = err.status;
  }
  console.log(JSON.stringify({
    vs: vs.id, store_status: vs.status, batch_status: batch.status, batch_counts: batch.file_counts, poll_ms: pollMs,
    results, listed, all_files: allFiles, deleted: deleted.deleted, counts_after: after.file_counts, missing,
  }));
}

main().catch((err) => {
  console.error(String(err));
  process.exit(1);
});
