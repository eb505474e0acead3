"""A cap on request bodies, before anything reads them (ASGI middleware).

A body announced larger than the cap (Content-Length) is refused at once; one sent without a
length (chunked) is counted as it arrives and refused when it passes the cap, so no request
makes the server hold more than `max_bytes` of it.
"""

import json

from starlette.exceptions import HTTPException


class BodyTooLarge(HTTPException):
    """Raised while the body is read: FastAPI passes HTTP exceptions through (any other
    exception while reading would become its generic 400)."""

    def __init__(self, message: str):
        super().__init__(status_code=413, detail=message)


class BodyLimit:
    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    def _message(self, size: str) -> str:
        return (f"the request body is {size}, more than this server's limit of "
                f"{self.max_bytes // 1024:,} KiB; send less (the server's --max_body_kb sets "
                f"it)")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"").decode("latin-1")
        if length.isdigit() and int(length) > self.max_bytes:
            return await _refuse(send, self._message(f"{int(length):,} bytes"))
        received = 0

        async def limited():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self._message(f"over {self.max_bytes:,} bytes"))
            return message

        await self.app(scope, limited, send)


async def _refuse(send, message: str):
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
