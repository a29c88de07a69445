// Conversation memory through the official Node SDK (issue 13), run by
// TestMemoryE2ENode: two turns (the second sends only its new message),
// then the SDK's own Conversations API lists the items. Prints JSON.
const OpenAI = require("openai");

async function main() {
  const client = new OpenAI({ baseURL: process.env.PROXY_URL + "/v1", apiKey: process.env.PROXY_KEY, maxRetries: 0 });
  const first = await client.chat.completions
    .create({ model: "gpt-test", messages: [{ role: "user", content: "my name is Ada" }] },
      { headers: { "x-llmproxy-conversation": "new" } })
    .withResponse();
  const conv = first.response.headers.get("x-llmproxy-conversation");
  // The body field: the SDK sends parameters it does not know as they are.
  await client.chat.completions.create({ model: "gpt-test", conversation: conv,
    messages: [{ role: "user", content: "what is my name?" }] });
  const items = [];
  for await (const item of client.conversations.items.list(conv, { order: "asc" })) {
    items.push({ id: item.id, type: item.type, role: item.role });
  }
  const got = await client.conversations.retrieve(conv);
  console.log(JSON.stringify({ conv, object: got.object, items }));
}

main().catch((err) => {
  console.error(String(err));
  process.exit(1);
});
