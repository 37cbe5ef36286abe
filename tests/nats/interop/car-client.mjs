// An independent NATS client (the official nats.js, not written by this project) that talks to
// a custody car over NATS the way a third party would: read the published KV state, send a set
// request, and check that the accepted value shows up in the KV bucket.
//
//   node car-client.mjs <nats-url> <bucket> <speed>
//
// <nats-url> may carry credentials: nats://user:pass@host:port or nats://token@host:port.
// <speed> is parsed as JSON, so `42` sends {"speed":42} and '"fast"' sends {"speed":"fast"}
// (handy for provoking an "invalid" reply).
//
// Output, one line each, in this order:
//   data <json>                       value of KV key "data" (compact JSON)
//   status <json>                     value of KV key "status"
//   set <status> <version|-> <body|message|->
//   rejected <error> <category>       only when status is "rejected"
//   after <json>                      only when "accepted": the first KV "data" entry that holds
//                                     the stored value or a newer one, as the reply's
//                                     Custody-Owner and Custody-Version headers tell
//
// Exit codes: 0 ok (any well-formed reply, including rejected/dropped/...), 1 failure (connect,
// missing bucket/key, request timeout, watch timeout, ...), 2 usage, 3 KV value has the wrong
// shape, 4 no responders, 5 malformed reply.

import { connect, ErrorCode, Match } from "nats";

const kTimeoutMs = 5000;
const kStatuses = ["accepted", "rejected", "dropped", "owner-gone", "timeout", "invalid"];

class Failure extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

function fail(code, message) {
  throw new Failure(code, message);
}

function parseJson(text, what) {
  try {
    return JSON.parse(text);
  } catch (err) {
    return fail(3, `${what} is not JSON (${err.message}): ${text}`);
  }
}

// A deleted or purged key still has an entry (with an empty value), so check the operation too.
async function readKey(kv, bucket, key) {
  const entry = await kv.get(key);
  if (entry === null || entry.operation !== "PUT") {
    fail(1, `key "${key}" not found in bucket "${bucket}"`);
  }
  const value = parseJson(entry.string(), `value of key "${key}"`);
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    fail(3, `value of key "${key}" is not a JSON object: ${entry.string()}`);
  }
  return { entry, value };
}

// Resolves with the first PUT of `key` at or above revision `since` that holds the owner's value
// `version` or a newer one of that owner, as the Custody-Owner and Custody-Version headers of
// the entry in the bucket's stream say. The watch delivers the current value first, so a value
// that is already there is found without waiting.
async function waitForValue(jsm, kv, bucket, key, owner, version, since, timeoutMs) {
  const watch = await kv.watch({ key });
  const timer = setTimeout(() => watch.stop(), timeoutMs);
  try {
    for await (const entry of watch) {
      if (entry.operation !== "PUT" || entry.revision < since) continue;
      let stored;
      try {
        stored = await jsm.streams.getMessage(`KV_${bucket}`, { seq: entry.revision });
      } catch (err) {
        continue;  // replaced by a newer entry meanwhile, which the watch delivers next
      }
      const tag = (name) => (stored.header ? stored.header.get(name, Match.IgnoreCase) : "");
      if (tag("Custody-Owner") === owner && Number(tag("Custody-Version")) >= version) {
        return entry;
      }
    }
    return fail(1, `KV key "${key}" got no entry with ${owner}'s version ${version} or newer ` +
                   `within ${timeoutMs} ms`);
  } finally {
    clearTimeout(timer);
    watch.stop();
  }
}

// nats.js 2.x ignores credentials in the URL, so move them into the connect options:
// nats://user:pass@host:port, or nats://token@host:port.
function connectOptions(url) {
  const parsed = new URL(url);
  const user = decodeURIComponent(parsed.username);
  const pass = decodeURIComponent(parsed.password);
  parsed.username = "";
  parsed.password = "";
  const options = { servers: parsed.href, timeout: kTimeoutMs, reconnect: false };
  if (user !== "" && pass !== "") Object.assign(options, { user, pass });
  else if (user !== "") options.token = user;
  return options;
}

async function run(url, bucket, speed) {
  let nc;
  try {
    nc = await connect(connectOptions(url));
  } catch (err) {
    fail(1, `cannot connect to ${url.replace(/\/\/[^@/]*@/, "//***@")}: ${err.message}`);
  }
  try {
    const js = nc.jetstream();
    // bindOnly: without it views.kv() silently CREATES a missing bucket, hiding the very bug
    // this client is meant to catch. status() then proves the bucket exists.
    const kv = await js.views.kv(bucket, { bindOnly: true });
    try {
      await kv.status();
    } catch (err) {
      fail(1, `KV bucket "${bucket}" is not available: ${err.message}`);
    }

    // a) data
    const data = await readKey(kv, bucket, "data");
    console.log(`data ${JSON.stringify(data.value)}`);
    for (const field of ["speed", "location"]) {
      if (typeof data.value[field] !== "number" || !Number.isFinite(data.value[field])) {
        fail(3, `"data" has no numeric "${field}" field: ${JSON.stringify(data.value)}`);
      }
    }

    // b) status
    const status = await readKey(kv, bucket, "status");
    console.log(`status ${JSON.stringify(status.value)}`);
    if (typeof status.value.connected !== "boolean") {
      fail(3, `"status" has no boolean "connected" field: ${JSON.stringify(status.value)}`);
    }

    // c) set request
    const subject = `custody.${bucket}.data.set`;
    let reply;
    try {
      reply = await nc.request(subject, new TextEncoder().encode(JSON.stringify({ speed })), {
        timeout: kTimeoutMs,
      });
    } catch (err) {
      if (err.code === ErrorCode.NoResponders) {
        console.log("set no-responders");
        fail(4, `no responders on ${subject}`);
      }
      if (err.code === ErrorCode.Timeout) {
        fail(1, `request on ${subject} timed out after ${kTimeoutMs} ms`);
      }
      throw err;
    }

    // Header names are matched case-insensitively, as in HTTP; nats.js defaults to exact case.
    const header = (name) =>
      reply.headers && reply.headers.has(name, Match.IgnoreCase)
        ? reply.headers.get(name, Match.IgnoreCase)
        : null;
    const body = new TextDecoder().decode(reply.data);
    const replyStatus = header("Custody-Status");
    if (replyStatus === null) fail(5, `reply has no Custody-Status header; body: ${body}`);
    if (!kStatuses.includes(replyStatus)) fail(5, `unknown Custody-Status "${replyStatus}"`);

    if (replyStatus !== "accepted") {
      const message = header("Custody-Message");
      if ((replyStatus === "rejected" || replyStatus === "invalid") && message === null) {
        fail(5, `"${replyStatus}" reply has no Custody-Message header`);
      }
      console.log(`set ${replyStatus} - ${message ?? (body !== "" ? body : "-")}`);
      if (replyStatus === "rejected") {
        const error = header("Custody-Error");
        const category = header("Custody-Category");
        if (error === null || !/^-?\d+$/.test(error)) {
          fail(5, `"rejected" reply has no decimal Custody-Error header (got ${error})`);
        }
        if (category === null) fail(5, `"rejected" reply has no Custody-Category header`);
        console.log(`rejected ${error} ${category}`);
      }
      return 0;
    }

    const owner = header("Custody-Owner");
    const versionText = header("Custody-Version");
    const sinceText = header("Custody-Since-Revision") ?? "0";
    if (owner === null || owner === "") fail(5, `"accepted" reply has no Custody-Owner header`);
    for (const [name, text] of [["Custody-Version", versionText], ["Custody-Since-Revision", sinceText]]) {
      if (text === null || !/^\d+$/.test(text)) {
        fail(5, `"accepted" reply has no decimal ${name} header (got ${text})`);
      }
    }
    const version = Number(versionText);
    let stored;
    try {
      stored = JSON.parse(body);
    } catch (err) {
      fail(5, `"accepted" reply body is not JSON (${err.message}): ${body}`);
    }
    console.log(`set accepted ${version} ${JSON.stringify(stored)}`);

    // d) the accepted value must reach the KV bucket
    const jsm = await nc.jetstreamManager();
    const after = await waitForValue(jsm, kv, bucket, "data", owner, version, Number(sinceText),
                                     kTimeoutMs);
    const afterValue = parseJson(after.string(), `value of key "data" after the set`);
    console.log(`after ${JSON.stringify(afterValue)}`);
    return 0;
  } finally {
    await nc.close();
  }
}

async function main(argv) {
  if (argv.length !== 3) {
    console.error("usage: node car-client.mjs <nats-url> <bucket> <speed>");
    return 2;
  }
  const [url, bucket, speedText] = argv;
  let speed;
  try {
    speed = JSON.parse(speedText);
  } catch {
    console.error(`car-client: <speed> must be JSON (e.g. 42 or '"fast"'), got: ${speedText}`);
    return 2;
  }
  // Never hang the calling test, whatever the server does.
  const watchdog = setTimeout(() => {
    console.error("car-client: gave up after 30 s");
    process.exit(1);
  }, 30000);
  watchdog.unref();
  try {
    return await run(url, bucket, speed);
  } catch (err) {
    console.error(`car-client: ${err.message}`);
    return err instanceof Failure ? err.code : 1;
  }
}

process.exit(await main(process.argv.slice(2)));
