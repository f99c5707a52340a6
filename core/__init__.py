"""StoreLens core: domain models, ports, services and backend wiring.

Heavy dependencies (dlib, OpenCV, boto3) are imported only by the adapters
that need them, never here.
"""

from __future__ import annotations

from core.bootstrap import Services, build_services
from core.errors import StoreLensError
from core.models import (
    AuditEntry,
    Band,
    BoundingBox,
    Customer,
    CustomerDetails,
    Face,
    FaceEvent,
    PendingIdentity,
    Transaction,
    Visit,
)
from core.settings import Settings

__all__ = [
    "AuditEntry",
    "Band",
    "BoundingBox",
    "Customer",
    "CustomerDetails",
    "Face",
    "FaceEvent",
    "PendingIdentity",
    "Services",
    "Settings",
    "StoreLensError",
    "Transaction",
    "Visit",
    "build_services",
]
