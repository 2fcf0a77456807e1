"""Work-location aggregation: manual over automatic (docs/graph-api.md, "How the visible presence
is computed", rule 8)."""

from __future__ import annotations

from presenced.domain.model import (
    LocationLayer,
    WorkLocationSource,
    WorkLocationView,
)


def work_location(manual: LocationLayer | None, automatic: LocationLayer | None) -> WorkLocationView:
    """The visible work location: the manual layer, else the automatic one, else none."""
    if manual is not None:
        return WorkLocationView(manual.work_location_type, WorkLocationSource.MANUAL, manual.place_id)
    if automatic is not None:
        return WorkLocationView(automatic.work_location_type, WorkLocationSource.AUTOMATIC, automatic.place_id)
    return _NONE


_NONE = WorkLocationView()
