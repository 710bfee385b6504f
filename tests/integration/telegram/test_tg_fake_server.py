"""The fake Bot API itself: encodings, envelopes and long polling, as Telegram does them."""

from __future__ import annotations

import json

import aiohttp
import pytest

from tests.fakes.bot_api import FakeBotApi
from tests.integration.telegram.updates import command, sample

pytestmark = [pytest.mark.integration, pytest.mark.timeout(15)]


def url(api: FakeBotApi, method: str) -> str:
    return f"{api.base_url}{api.token}/{method}"


async def test_send_message_accepts_form_json_and_multipart_bodies(api: FakeBotApi) -> None:
    markup = {"inline_keyboard": [[{"text": "ok", "callback_data": "a"}]]}
    form = aiohttp.FormData({"chat_id": "5", "text": "form", "reply_markup": json.dumps(markup)})
    multipart = aiohttp.FormData(quote_fields=False)
    multipart.add_field("chat_id", "6")
    multipart.add_field("text", "multipart")
    multipart.add_field("document", b"bytes", filename="x.txt")
    async with aiohttp.ClientSession() as http:
        for kwargs in (
            {"data": form},
            {"json": {"chat_id": 7, "text": "json"}},
            {"data": multipart},
        ):
            async with http.post(url(api, "sendMessage"), **kwargs) as resp:
                body = await resp.json()
                assert resp.status == 200
                assert body["ok"] is True
                assert body["result"]["from"]["is_bot"] is True
    assert api.texts() == ["form", "json", "multipart"]
    assert api.sent(5)[0]["reply_markup"] == markup


async def test_errors_use_telegrams_envelopes(api: FakeBotApi) -> None:
    api.fail("sendMessage", 429, retry_after=14)
    async with aiohttp.ClientSession() as http:
        async with http.post(url(api, "sendMessage"), json={"chat_id": 1, "text": "x"}) as resp:
            assert resp.status == 429
            assert await resp.json() == sample("too_many_requests.json")
        too_long = {"chat_id": 1, "text": "x" * 4097}
        async with http.post(url(api, "sendMessage"), json=too_long) as resp:
            assert resp.status == 400
            assert await resp.json() == sample("too_long.json")
        async with http.post(f"{api.base_url}1:wrong/getMe") as resp:
            assert resp.status == 401


async def test_get_updates_long_polls_and_confirms_by_offset(api: FakeBotApi) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(url(api, "getUpdates"), data={"timeout": "0.05"}) as resp:
            assert (await resp.json())["result"] == []
        first = api.push(command("/status"))
        second = api.push(command("/help"))
        async with http.post(url(api, "getUpdates"), data={"offset": "0"}) as resp:
            ids = [u["update_id"] for u in (await resp.json())["result"]]
        assert ids == [first, second]
        async with http.post(url(api, "getUpdates"), data={"offset": str(second)}) as resp:
            result = (await resp.json())["result"]
        assert [u["update_id"] for u in result] == [second]
        entity = result[0]["message"]["entities"][0]
        assert entity == {"offset": 0, "length": 5, "type": "bot_command"}
