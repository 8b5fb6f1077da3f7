"""Asyncio resilience primitives: circuit breaker, retry budget, bulkhead, deadlines, backoff.

Each is built from the plain-data policies in ``services.common.policy`` and takes an injectable
monotonic clock where time matters, so behaviour over time is testable without sleeping.
"""

from services.common.resilience.backoff import backoff_s, retrying, wait_strategy
from services.common.resilience.breaker import AsyncCircuitBreaker
from services.common.resilience.budget import RetryBudget
from services.common.resilience.bulkhead import Bulkhead
from services.common.resilience.deadline import (
    DEADLINE_HEADER,
    DeadlineMiddleware,
    check,
    clear_deadline,
    outgoing_headers,
    parse_header,
    remaining,
    set_deadline,
    set_deadline_from_header,
)
from services.common.resilience.errors import (
    BulkheadFull,
    CircuitOpen,
    DeadlineExceeded,
    RetryBudgetExhausted,
)

__all__ = [
    "DEADLINE_HEADER",
    "AsyncCircuitBreaker",
    "Bulkhead",
    "BulkheadFull",
    "CircuitOpen",
    "DeadlineExceeded",
    "DeadlineMiddleware",
    "RetryBudget",
    "RetryBudgetExhausted",
    "backoff_s",
    "check",
    "clear_deadline",
    "outgoing_headers",
    "parse_header",
    "remaining",
    "retrying",
    "set_deadline",
    "set_deadline_from_header",
    "wait_strategy",
]
