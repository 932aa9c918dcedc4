"""The POS channel's job kinds, in one place for its modules."""

from __future__ import annotations

from shopbridge.services.fulfilment import cancel_kind, place_order_kind

TAKE_EVENT = "pos.take_event"  # one event the POS sent: levels, a sale, a return, a task's progress (events.py)
PLACE_ORDER = place_order_kind("pos")  # a released order of another channel becomes a fulfilment task (tasks.py)
CANCEL_ORDER = cancel_kind("pos")  # cancel the task of an order cancelled on its channel (tasks.py)
POLL = "pos.poll"  # the backstop: tasks and returns changed since the watermark, and every mapped location's levels
