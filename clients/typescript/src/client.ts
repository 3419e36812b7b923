// A small typed client of the Tasks API: the calls the seed frontend makes, with request and
// response types generated from the committed openapi.json (`npm run generate` writes src/api.d.ts).
// When the API changes shape, `tsc --noEmit` fails here instead of in a browser.
import type { components, operations } from "./api.js";

type Schemas = components["schemas"];
type JsonBody<Op> = Op extends { requestBody?: { content: { "application/json": infer B } } } ? B : never;
type JsonOk<Op, Status extends number> = Op extends {
  responses: { [S in Status]: { content: { "application/json": infer R } } };
}
  ? R
  : never;

export type Task = Schemas["Task"];
export type TaskList = Schemas["TaskListEnvelope"];
export type User = Schemas["User"];
export type Session = Schemas["AuthSession"];
export type ErrorBody = Schemas["ErrorBody"];
export type SignUp = JsonBody<operations["SignUp"]>;
export type SignIn = JsonBody<operations["SignIn"]>;
export type TaskCreate = JsonBody<operations["CreateTask"]>;
export type TaskUpdate = JsonBody<operations["UpdateTask"]>;
export type ListQuery = NonNullable<operations["ListTasks"]["parameters"]["query"]>;
export type Completion = Schemas["CompletionEnvelope"];
export type TagCount = Schemas["TagCount"];

/** Any answer outside 2xx: the API's error envelope, with its status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: ErrorBody,
    readonly retryAfter: string | null,
  ) {
    super(`${status} ${body.code}: ${body.message}`);
  }
}

export class TasksClient {
  private token: string | null = null;

  constructor(private readonly baseUrl: string) {}

  async signUp(body: SignUp): Promise<Session> {
    const answer: JsonOk<operations["SignUp"], 201> = await this.call("POST", "/api/auth/signup", body);
    this.token = answer.data.access_token;
    return answer.data;
  }

  async signIn(body: SignIn): Promise<Session> {
    const answer: JsonOk<operations["SignIn"], 200> = await this.call("POST", "/api/auth/signin", body);
    this.token = answer.data.access_token;
    return answer.data;
  }

  async me(): Promise<User> {
    const answer: JsonOk<operations["GetMe"], 200> = await this.call("GET", "/api/auth/me");
    return answer.data;
  }

  /** The seed frontend lists with a trailing slash; the API answers it as `/api/tasks`. */
  async list(query: ListQuery = {}): Promise<TaskList> {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (Array.isArray(value)) {
        for (const one of value) search.append(key, String(one)); // tag=a&tag=b: every one must hold
      } else if (value !== undefined && value !== null) {
        search.set(key, String(value));
      }
    }
    const suffix = search.size > 0 ? `?${search}` : "";
    const answer: JsonOk<operations["ListTasks"], 200> = await this.call("GET", `/api/tasks/${suffix}`);
    return answer;
  }

  async create(body: TaskCreate): Promise<Task> {
    const answer: JsonOk<operations["CreateTask"], 201> = await this.call("POST", "/api/tasks", body);
    return answer.data;
  }

  async get(id: number): Promise<Task> {
    const answer: JsonOk<operations["GetTask"], 200> = await this.call("GET", `/api/tasks/${id}`);
    return answer.data;
  }

  /** PUT: `title` required; an omitted `description`/`completed` is kept, `description: null` clears. */
  async update(id: number, body: TaskUpdate): Promise<Task> {
    const answer: JsonOk<operations["UpdateTask"], 200> = await this.call("PUT", `/api/tasks/${id}`, body);
    return answer.data;
  }

  /** PATCH …/complete with no body toggles; with `completed` it sets (safe to retry). */
  async complete(id: number, completed?: boolean): Promise<Task> {
    const body: JsonBody<operations["CompleteTask"]> | undefined =
      completed === undefined ? undefined : { completed };
    const answer: JsonOk<operations["CompleteTask"], 200> = await this.call(
      "PATCH",
      `/api/tasks/${id}/complete`,
      body,
    );
    return answer.data;
  }

  async remove(id: number): Promise<void> {
    await this.call("DELETE", `/api/tasks/${id}`);
  }

  /** Completes (or toggles) and also returns the next occurrence a recurring task got, if any. */
  async completeWithNext(id: number, completed?: boolean): Promise<Completion> {
    const body: JsonBody<operations["CompleteTask"]> | undefined =
      completed === undefined ? undefined : { completed };
    return await this.call("PATCH", `/api/tasks/${id}/complete`, body);
  }

  /** My tags, most used first, with how many tasks carry each. */
  async tags(): Promise<TagCount[]> {
    const answer: JsonOk<operations["ListTags"], 200> = await this.call("GET", "/api/tags");
    return answer.data;
  }

  /** Deletes every completed task; how many were deleted. */
  async clearCompleted(): Promise<number> {
    const answer: JsonOk<operations["ClearCompletedTasks"], 200> = await this.call(
      "DELETE",
      "/api/tasks?completed=true",
    );
    return answer.data.deleted;
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.token !== null) headers["Authorization"] = `Bearer ${this.token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const init: RequestInit = { method, headers };
    if (body !== undefined) init.body = JSON.stringify(body);
    const response = await fetch(`${this.baseUrl}${path}`, init);
    if (response.status === 204) return undefined as T;
    const payload: unknown = await response.json();
    if (!response.ok) {
      const envelope = payload as Schemas["ErrorResponse"];
      throw new ApiError(response.status, envelope.error, response.headers.get("Retry-After"));
    }
    return payload as T;
  }
}
