// The seed frontend's journey, end to end: `node dist/demo.js http://127.0.0.1:8000`.
// Prints one JSON line per step; any unexpected answer throws (non-zero exit).
import { ApiError, TasksClient } from "./client.js";

declare const process: { argv: string[] };

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`unexpected: ${what}`);
}

async function main(baseUrl: string): Promise<void> {
  const api = new TasksClient(baseUrl);
  const email = `demo-${Date.now()}-${Math.random().toString(36).slice(2)}@example.com`;
  const password = "correct horse battery staple";
  const signedUp = await api.signUp({ email, password, name: "Demo" });
  const session = await api.signIn({ email, password });
  check(session.user.id === signedUp.user.id, "sign-in answers the signed-up user");
  check((await api.me()).email === email, "me");

  const created = await api.create({ title: "Buy milk", description: "2 litres" });
  check(created.completed === false && created.description === "2 litres", "create");
  const listed = await api.list({ status: "pending", sort: "-created_at", limit: 50 });
  check(listed.meta.total === 1 && listed.data[0]?.id === created.id, "list with the trailing slash");
  const updated = await api.update(created.id, { title: "Buy oat milk", description: null });
  check(updated.title === "Buy oat milk" && updated.description === null, "update via PUT");
  check((await api.complete(created.id)).completed, "toggle via PATCH");
  check(!(await api.complete(created.id, false)).completed, "set via PATCH");

  // Organizing: tags, a weekly recurrence, the filters, the tag counts, clearing completed tasks.
  const gym = await api.create({
    title: "Gym",
    priority: "high",
    tags: ["Health", "health", "routine"],
    due_at: "2026-11-30T07:00:00+01:00",
    recurrence: "FREQ=WEEKLY;BYDAY=MO,TH",
  });
  check(gym.tags.join() === "Health,routine" && gym.due_at === "2026-11-30T06:00:00Z", "tags and due_at");
  const done = await api.completeWithNext(gym.id);
  check(done.data.completed && done.meta.next?.due_at === "2026-12-03T06:00:00Z", "the next occurrence");
  const healthy = await api.list({ tag: ["HEALTH", "routine"], priority: "high", sort: "due_at", limit: 20 });
  check(healthy.meta.total === 2, "tag and priority filters");
  check((await api.tags())[0]?.name === "Health", "tag counts");
  check((await api.clearCompleted()) === 1, "clear completed");
  await api.remove(created.id);
  try {
    await api.get(created.id);
    check(false, "a deleted task is gone");
  } catch (error) {
    check(error instanceof ApiError && error.status === 404 && error.body.code === "NOT_FOUND", "404 envelope");
  }
  console.log(JSON.stringify({ ok: true, user: session.user.id }));
}

const baseUrl = process.argv[2];
if (baseUrl === undefined) throw new Error("usage: node dist/demo.js <base url>");
await main(baseUrl);
