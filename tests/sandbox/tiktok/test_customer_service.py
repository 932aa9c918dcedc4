"""Customer service (§10): buyer messages as NEW_MESSAGE webhooks, replies, sessions with first_response_time."""

from __future__ import annotations

import json

import pytest

from .conftest import Env

pytestmark = pytest.mark.anyio
BASE = "/customer_service/202309/conversations"


async def test_buyer_message_reply_and_session(env: Env) -> None:
    await env.subscribe("NEW_MESSAGE")
    sent = await env.control(
        "POST",
        "/messages",
        {
            "shop_id": env.shop_id,
            "buyer_user_id": "7494560109732334262",
            "text": "Where is my order?",
            "nickname": "Albert",
        },
    )
    conversation_id = sent["conversation_id"]
    await env.sb.run_once()
    [hook] = [b for b in env.hooks.bodies() if b["type"] == 14]
    assert hook["data"]["sender"]["role"] == "BUYER"
    assert json.loads(hook["data"]["content"]) == {"content": "Where is my order?"}

    conversations = await env.ok("GET", BASE, query=[("page_size", "10")])
    [conversation] = conversations["conversations"]
    assert conversation["unread_count"] == 1 and conversation["latest_message"]["type"] == "TEXT"

    await env.advance(600)
    reply = await env.ok(
        "POST",
        f"{BASE}/{conversation_id}/messages",
        body={"type": "TEXT", "content": json.dumps({"content": "It ships today."})},
    )
    assert reply["message_id"]
    await env.ok("POST", f"{BASE}/{conversation_id}/messages/read")
    messages = await env.ok("GET", f"{BASE}/{conversation_id}/messages", query=[("page_size", "10")])
    assert [m["sender"]["role"] for m in messages["messages"]] == ["CUSTOMER_SERVICE", "BUYER"]

    now = env.sb.clock.now_s()
    sessions = await env.ok(
        "POST",
        "/customer_service/202602/sessions/search",
        body={"begin_time_ge": now - 3600, "begin_time_lt": now + 1},
        query=[("page_size", "10")],
    )
    [session] = sessions["sessions"]
    assert session["first_response_time"] == 600 and session["first_response_late"] is False


async def test_send_message_validation(env: Env) -> None:
    sent = await env.control("POST", "/messages", {"shop_id": env.shop_id, "buyer_user_id": "1", "text": "hi"})
    path = f"{BASE}/{sent['conversation_id']}/messages"
    not_json = await env.api("POST", path, body={"type": "TEXT", "content": "plain text"})
    assert not_json.status_code == 400 and not_json.json()["code"] == 98001004
    too_long = await env.api("POST", path, body={"type": "TEXT", "content": json.dumps({"content": "x" * 2001})})
    assert too_long.status_code == 400
    bad_type = await env.api("POST", path, body={"type": "STICKER", "content": "{}"})
    assert bad_type.status_code == 400


async def test_create_conversation_needs_a_relationship(env: Env) -> None:
    stranger = await env.api("POST", BASE, body={"buyer_user_id": "999"})
    assert stranger.json()["code"] == 45101002
    product = await env.product([{"seller_sku": "A", "price": "1.00", "quantity": 1}])
    await env.order([(product["skus"][0]["id"], 1)], buyer_user_id="555")
    created = await env.ok("POST", BASE, body={"buyer_user_id": "555"})
    assert created["conversation_id"]
