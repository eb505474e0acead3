// Server-Sent Events read from a fetch() response: EventSource can only GET, and a
// generation request is a POST with a JSON body. The parser follows the format of the HTML
// standard (lines end with \n, \r\n or \r; "event:" and "data:" fields; a blank line ends
// an event; lines starting with ":" are comments) and is fed text in pieces of any size.

export class SSEParser {
  constructor() {
    this.buffer = "";
    this.reset();
  }

  reset() {
    this.eventType = "";
    this.data = [];
  }

  // Feeds a piece of the stream; returns the events it completed, as {event, data}.
  push(text) {
    this.buffer += text;
    const events = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) break;
      // A lone "\r" at the very end may be the first half of "\r\n": wait for more.
      if (match[0] === "\r" && match.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const event = this.line(line);
      if (event) events.push(event);
    }
    return events;
  }

  line(line) {
    if (line === "") {
      if (this.data.length === 0) { this.reset(); return null; }
      const event = {event: this.eventType || "message", data: this.data.join("\n")};
      this.reset();
      return event;
    }
    if (line.startsWith(":")) return null;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.eventType = value;
    else if (field === "data") this.data.push(value);
    return null;
  }
}

// Yields the events of a fetch() Response as they arrive, their data parsed as JSON.
export async function* readEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const parser = new SSEParser();
  for (;;) {
    const {value, done} = await reader.read();
    const text = done ? decoder.decode() + "\n\n" : decoder.decode(value, {stream: true});
    for (const event of parser.push(text)) {
      yield {event: event.event, data: JSON.parse(event.data)};
    }
    if (done) return;
  }
}
