"""Customer service (§10): conversations, messages, sending, buyer messages as NEW_MESSAGE webhooks, sessions.

A session opens on a buyer message when none is open; its `first_response_time` is the seconds until the
first visible SHOP or CUSTOMER_SERVICE message, the measure behind TikTok's response-time metric.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from .errors import ErrorSpec, invalid_parameter
from .gateway import Call, Endpoint
from .models import Conversation, Message, Order, Session, Shop
from .pagination import paginate, scope_of

if TYPE_CHECKING:
    from .runtime import TikTokSandbox

# A session is "late" when the first answer takes longer than this ([INFERRED]: the docs give no number).
RESPONSE_SLA_SECONDS = 12 * 3600
TEXT_MAX = 2000
CONVERSATION_NOT_FOUND = ErrorSpec(
    45101001, "The conversation does not exist or does not belong to the current shop.", 200
)  # [INFERRED]
CANNOT_MESSAGE = ErrorSpec(45101002, "The buyer cannot be messaged: no order or chat history.", 200)  # [INFERRED]


def _conversation_for(sb: TikTokSandbox, shop: Shop, buyer_user_id: str, nickname: str) -> Conversation:
    existing = next(
        (c for c in sb.world.table(Conversation).values() if c.shop_id == shop.id and c.buyer_user_id == buyer_user_id),
        None,
    )
    if existing is not None:
        return existing
    conversation = Conversation(
        id=sb.ids.generic(),
        shop_id=shop.id,
        buyer_user_id=buyer_user_id,
        buyer_im_user_id=sb.ids.generic(),
        buyer_nickname=nickname,
        shop_im_user_id=sb.ids.generic(),
        create_time=sb.clock.now_s(),
    )
    sb.world.save(conversation)
    return conversation


def _add_message(
    sb: TikTokSandbox,
    conversation: Conversation,
    *,
    type_: str,
    content: str,
    role: Literal["BUYER", "SHOP", "CUSTOMER_SERVICE", "SYSTEM", "ROBOT"],
) -> Message:
    now = sb.clock.now()
    buyer = role == "BUYER"
    message = Message(
        id=sb.ids.generic(),
        conversation_id=conversation.id,
        shop_id=conversation.shop_id,
        type=type_,
        content=content,
        create_time=int(now),
        index=str(int(now * 1_000_000)),
        sender_role=role,
        sender_im_user_id=conversation.buyer_im_user_id if buyer else conversation.shop_im_user_id,
        sender_nickname=conversation.buyer_nickname if buyer else "Shop",
    )
    sb.world.save(message)
    conversation.latest_message_id = message.id
    open_session = next(
        (s for s in sb.world.table(Session).values() if s.conversation_id == conversation.id and s.end_time is None),
        None,
    )
    if buyer:
        conversation.unread_count += 1
        if open_session is None:
            sb.world.save(
                Session(
                    id=sb.ids.generic(),
                    conversation_id=conversation.id,
                    shop_id=conversation.shop_id,
                    buyer_nickname=conversation.buyer_nickname,
                    begin_time=message.create_time,
                )
            )
    elif role in ("SHOP", "CUSTOMER_SERVICE") and open_session is not None:
        if open_session.first_response_time is None:
            open_session.first_response_time = message.create_time - open_session.begin_time
        open_session.end_time = message.create_time
        sb.world.save(open_session)
    sb.world.save(conversation)
    sb.webhooks.emit(
        conversation.shop_id,
        14,
        {
            "message_id": message.id,
            "index": message.index,
            "conversation_id": conversation.id,
            "type": message.type,
            "content": message.content,
            "create_time": message.create_time,
            "is_visible": message.is_visible,
            "sender": {"im_user_id": message.sender_im_user_id, "role": message.sender_role},
        },
    )
    return message


def buyer_sends(sb: TikTokSandbox, shop: Shop, buyer_user_id: str, text: str, nickname: str = "Buyer") -> Message:
    conversation = _conversation_for(sb, shop, buyer_user_id, nickname)
    content = json.dumps({"content": text})
    return _add_message(sb, conversation, type_="TEXT", content=content, role="BUYER")


def message_json(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "index": m.index,
        "type": m.type,
        "content": m.content,
        "create_time": m.create_time,
        "is_visible": m.is_visible,
        "sender": {
            "im_user_id": m.sender_im_user_id,
            "role": m.sender_role,
            "nickname": m.sender_nickname,
            "avatar": "",
        },
    }


def _conversation_json(call: Call, c: Conversation) -> dict[str, Any]:
    latest = call.world.get(Message, c.latest_message_id) if c.latest_message_id else None
    out: dict[str, Any] = {
        "id": c.id,
        "participant_count": 2,
        "can_send_message": True,
        "unread_count": c.unread_count,
        "create_time": c.create_time,
        "participants": [
            {
                "im_user_id": c.buyer_im_user_id,
                "user_id": c.buyer_user_id,
                "role": "BUYER",
                "nickname": c.buyer_nickname,
                "avatar": "",
                "buyer_platform": "TIKTOK_SHOP",
            },
            {"im_user_id": c.shop_im_user_id, "user_id": c.shop_id, "role": "SHOP", "nickname": "Shop", "avatar": ""},
        ],
    }
    if latest is not None:
        out["latest_message"] = message_json(latest)
    return out


def _conversation(call: Call) -> Conversation:
    c = call.world.get(Conversation, call.path_params["conversation_id"])
    if c is None or c.shop_id != call.require_shop().id:
        raise CONVERSATION_NOT_FOUND.error()
    return c


def get_conversations(call: Call) -> dict[str, Any]:
    shop = call.require_shop()
    size = call.page_size(20)
    rows = [c for c in call.world.table(Conversation).values() if c.shop_id == shop.id]

    def latest(c: Conversation) -> tuple[int, str]:
        m = call.world.get(Message, c.latest_message_id) if c.latest_message_id else None
        return (m.create_time if m else c.create_time, c.id)

    page = paginate(
        rows,
        key=latest,
        descending=True,
        page_size=size,
        page_token=call.param("page_token"),
        scope=scope_of("conversations", shop.id),
    )
    return {"conversations": [_conversation_json(call, c) for c in page.items], "next_page_token": page.next_page_token}


class CreateConversationIn(BaseModel):
    buyer_user_id: str = Field(min_length=1)


def create_conversation(call: Call) -> dict[str, Any]:
    shop = call.require_shop()
    body = call.body(CreateConversationIn)
    # A shop may open a chat only with a buyer who ordered from it (or chatted before).
    known = any(o.shop_id == shop.id and o.user_id == body.buyer_user_id for o in call.world.table(Order).values())
    existing = any(
        c.shop_id == shop.id and c.buyer_user_id == body.buyer_user_id for c in call.world.table(Conversation).values()
    )
    if not known and not existing:
        raise CANNOT_MESSAGE.error()
    return {"conversation_id": _conversation_for(call.sb, shop, body.buyer_user_id, "Buyer").id}


def get_messages(call: Call) -> dict[str, Any]:
    conversation = _conversation(call)
    size = call.page_size(10)
    sort_order = call.enum_param("sort_order", ("ASC", "DESC"), "DESC")
    call.enum_param("sort_field", ("create_time",), "create_time")
    rows = [m for m in call.world.table(Message).values() if m.conversation_id == conversation.id]
    page = paginate(
        rows,
        key=lambda m: (int(m.index), m.id),
        descending=sort_order == "DESC",
        page_size=size,
        page_token=call.param("page_token"),
        scope=scope_of("messages", conversation.id, sort_order),
    )
    return {
        "messages": [message_json(m) for m in page.items],
        "next_page_token": page.next_page_token,
        "unsupported_msg_tips": "Please check this message in Seller Center.\n",
    }


class SendMessageIn(BaseModel):
    type: Literal[
        "TEXT", "IMAGE", "VIDEO", "PRODUCT_CARD", "ORDER_CARD", "RETURN_REFUND_CARD", "COUPON_CARD", "LOGISTICS_CARD"
    ]
    content: str
    sender_role: Literal["CUSTOMER_SERVICE", "SYSTEM", "ROBOT"] | None = None


def send_message(call: Call) -> dict[str, Any]:
    conversation = _conversation(call)
    body = call.body(SendMessageIn)
    try:
        parsed = json.loads(body.content)
    except ValueError as exc:
        raise invalid_parameter("content", "not a JSON string", 'a JSON string such as {"content": "hi"}') from exc
    if body.type == "TEXT":
        text = parsed.get("content") if isinstance(parsed, dict) else None
        if not isinstance(text, str) or not 1 <= len(text) <= TEXT_MAX:
            raise invalid_parameter(
                "content", "TEXT needs a content string of 1-2000 characters", '{"content": "<text>"}'
            )
    role = body.sender_role or "CUSTOMER_SERVICE"
    message = _add_message(call.sb, conversation, type_=body.type, content=body.content, role=role)
    return {"message_id": message.id}


def mark_read(call: Call) -> dict[str, Any]:
    conversation = _conversation(call)
    conversation.unread_count = 0
    call.world.save(conversation)
    return {}


class SearchSessionsIn(BaseModel):
    begin_time_ge: int
    begin_time_lt: int
    buyer_nickname: str | None = None


def search_sessions(call: Call) -> dict[str, Any]:
    shop = call.require_shop()
    size = call.page_size(100)
    f = call.body(SearchSessionsIn)
    rows = [
        s
        for s in call.world.table(Session).values()
        if s.shop_id == shop.id
        and f.begin_time_ge <= s.begin_time < f.begin_time_lt
        and (f.buyer_nickname is None or s.buyer_nickname == f.buyer_nickname)
    ]
    page = paginate(
        rows,
        key=lambda s: (s.begin_time, s.id),
        descending=True,
        page_size=size,
        page_token=call.param("page_token"),
        scope=scope_of("sessions", shop.id, f.model_dump()),
    )
    now = call.now
    sessions = []
    for s in page.items:
        waited = s.first_response_time if s.first_response_time is not None else now - s.begin_time
        entry: dict[str, Any] = {
            "id": s.id,
            "conversation_id": s.conversation_id,
            "begin_time": s.begin_time,
            "buyer_nickname": s.buyer_nickname,
            "chat_tags": [],
            "first_response_late": waited > RESPONSE_SLA_SECONDS,
        }
        if s.end_time is not None:
            entry["end_time"] = s.end_time
        if s.first_response_time is not None:
            entry["first_response_time"] = s.first_response_time
        sessions.append(entry)
    return {"sessions": sessions, "next_page_token": page.next_page_token, "total_count": page.total_count}


ENDPOINTS = [
    Endpoint("GET", "/customer_service/202309/conversations", get_conversations),
    Endpoint("POST", "/customer_service/202309/conversations", create_conversation),
    Endpoint("GET", "/customer_service/202309/conversations/{conversation_id}/messages", get_messages),
    Endpoint("POST", "/customer_service/202309/conversations/{conversation_id}/messages", send_message),
    Endpoint("POST", "/customer_service/202606/conversations/{conversation_id}/messages", send_message),
    Endpoint("POST", "/customer_service/202309/conversations/{conversation_id}/messages/read", mark_read),
    Endpoint("POST", "/customer_service/202602/sessions/search", search_sessions),
]
