"""Domain events as the bus publishes them on ``<prefix>/events/<event_type>``: what leaves the
engine is only what the bus may see."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from callrouter.adapters.masking import mask_all_digits
from callrouter.core import domain as d

_CAMEL_HUMP = re.compile(r"(?<!^)(?=[A-Z])")


def event_type_name(event: d.DomainEvent) -> str:
    """``NhsNumberCaptured`` → ``nhs_number_captured``: the last level of the event's topic."""
    return _CAMEL_HUMP.sub("_", type(event).__name__).lower()


def event_payload(event: d.DomainEvent, node_id: str, seq: int) -> dict[str, Any]:
    """The event as the bus may see it: caller masked; NHS number, clinician name and the
    consultant's contact URI left out (the member id already says who was rung)."""
    fields = dataclasses.asdict(event)
    fields.pop("nhs_number", None)
    fields.pop("uri", None)
    if "clinician" in fields:
        fields["clinician_known"] = fields.pop("clinician") is not None
    if "caller" in fields:
        fields["caller"] = mask_all_digits(str(fields["caller"]))
    return {"type": event_type_name(event), "node": node_id, "seq": seq, **fields}
