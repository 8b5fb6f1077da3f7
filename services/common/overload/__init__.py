"""Overload protection: admission control in every service, adaptive throttling in every client."""

from services.common.overload.admission import AdmissionMiddleware, priority_of
from services.common.overload.dimmer import Dimmer
from services.common.overload.limit import AIMDLimit
from services.common.overload.policy import AdmissionPolicy, ClientThrottlePolicy, DimmerPolicy, OverloadPolicy
from services.common.overload.throttle import ClientThrottle

__all__ = [
    "AIMDLimit",
    "AdmissionMiddleware",
    "AdmissionPolicy",
    "ClientThrottle",
    "ClientThrottlePolicy",
    "Dimmer",
    "DimmerPolicy",
    "OverloadPolicy",
    "priority_of",
]
