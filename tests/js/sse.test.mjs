// node --test tests/js: the page's Server-Sent Events reader, without a browser.
import assert from "node:assert/strict";
import test from "node:test";

import {readEvents, SSEParser} from "../../tfcharrnn/serve/static/sse.js";

const STREAM = [
  ": a comment line\n",
  "event: chunk\ndata: {\"sample\": 0, \"delta\": \"To be\"}\n\n",
  "event: chunk\r\ndata: {\"sample\": 1, \"delta\": \"é, or\\n\"}\r\n\r\n",
  "data: first line\rdata: second line\r\r",
  "event: done\ndata: {\"texts\": [\"To be\"]}\n\n",
].join("");

const EXPECTED = [
  {event: "chunk", data: "{\"sample\": 0, \"delta\": \"To be\"}"},
  {event: "chunk", data: "{\"sample\": 1, \"delta\": \"é, or\\n\"}"},
  {event: "message", data: "first line\nsecond line"},
  {event: "done", data: "{\"texts\": [\"To be\"]}"},
];

test("events come out whole wherever the stream is cut", () => {
  for (let cut = 0; cut <= STREAM.length; cut++) {
    for (const step of [1, 3, 1000]) {
      const parser = new SSEParser();
      const events = parser.push(STREAM.slice(0, cut));
      for (let i = cut; i < STREAM.length; i += step) {
        events.push(...parser.push(STREAM.slice(i, i + step)));
      }
      assert.deepEqual(events, EXPECTED, `cut at ${cut}, pieces of ${step}`);
    }
  }
});

test("a blank line without data and unknown fields dispatch nothing", () => {
  const parser = new SSEParser();
  assert.deepEqual(parser.push("\n\nid: 7\nretry: 10\n\nevent: x\n\n"), []);
  assert.deepEqual(parser.push("data:no space\n\n"), [{event: "message", data: "no space"}]);
});

function responseOf(chunks) {
  const stream = new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
  return {body: stream};
}

test("readEvents decodes UTF-8 split across network chunks and parses the JSON", async () => {
  const bytes = new TextEncoder().encode(STREAM.replace(": a comment line\n", "")
    .replace("data: first line\rdata: second line\r\r", ""));
  const chunks = [];
  for (let i = 0; i < bytes.length; i += 5) chunks.push(bytes.slice(i, i + 5));
  const got = [];
  for await (const event of readEvents(responseOf(chunks))) got.push(event);
  assert.deepEqual(got, [
    {event: "chunk", data: {sample: 0, delta: "To be"}},
    {event: "chunk", data: {sample: 1, delta: "é, or\n"}},
    {event: "done", data: {texts: ["To be"]}},
  ]);
});

test("an event not ended by a blank line is still read at the end of the stream", async () => {
  const bytes = new TextEncoder().encode("event: done\ndata: {\"texts\": []}");
  const got = [];
  for await (const event of readEvents(responseOf([bytes]))) got.push(event);
  assert.deepEqual(got, [{event: "done", data: {texts: []}}]);
});
