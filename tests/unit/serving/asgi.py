"""Call an ASGI app in-process through httpx (no socket; integration tests use real ones)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx


def call(app: Any, method: str, url: str, **kw: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, url, **kw)

    return asyncio.run(go())
