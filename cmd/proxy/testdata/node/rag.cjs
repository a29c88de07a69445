// RAG through the official Node SDK (issue 12), run by TestRAGE2ENode: the
// same call plain and streamed on an alias with retrieval, and once
// naming the store with the body field. The SDK must parse every reply;
// "sources" comes through as the extra field it is. Prints JSON.
const OpenAI = require("openai");

async function main() {
  const client = new OpenAI({ baseURL: process.env.PROXY_URL + "/v1", apiKey: process.env.PROXY_KEY, maxRetries: 0 });
  const messages = [{ role: "user", content: process.env.QUESTION }];
  const { data: plain, response } = await client.chat.completions
    .create({ model: "gpt-rag", messages })
    .withResponse();
  const stream = await client.chat.completions.create({ model: "gpt-rag", messages, stream: true });
  let text = "";
  const chunkSources = [];
  for await (const chunk of stream) {
    chunkSources.push(chunk.sources ?? null);
    text += chunk.choices[0]?.delta?.content ?? "";
  }
  // A parameter the SDK does not know is sent as it is.
  const byBody = await client.chat.completions.create({ model: "gpt-test", messages, vector_store_ids: ["handbook"] });
  console.log(JSON.stringify({
    content: plain.choices[0].message.content,
    sources: plain.sources,
    header: response.headers.get("x-llmproxy-rag-sources"),
    text,
    chunkSources,
    bodySources: byBody.sources,
  }));
}

main().catch((err) => {
  console.error(String(err));
  process.exit(1);
});
