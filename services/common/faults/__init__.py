"""Live fault injection inside a service: link faults on leases, driven by the chaos controller.

`FaultSpec` (model.py) is the wire format, `FaultRegistry` (registry.py) the active faults of one
instance, `BrownoutMiddleware` (middleware.py) the server-side kind, `fault_router` (routes.py) the
admin routes. The shared HTTP client asks the registry before every attempt.
"""

from services.common.faults.middleware import BrownoutMiddleware, LoginLimitMiddleware
from services.common.faults.model import FAULT_ID_PATTERN, KINDS, Fault, FaultSpec
from services.common.faults.registry import FAULT_HEADER, FaultRegistry
from services.common.faults.routes import fault_router

__all__ = [
    "FAULT_HEADER",
    "FAULT_ID_PATTERN",
    "KINDS",
    "BrownoutMiddleware",
    "Fault",
    "FaultRegistry",
    "FaultSpec",
    "LoginLimitMiddleware",
    "fault_router",
]
