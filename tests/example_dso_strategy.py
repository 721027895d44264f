"""A researcher's own DSO design, used by a scenario as 'example_dso_strategy:CautiousDSO'.

It lives outside gridlayers on purpose: the scenario names it by import path.
"""

from __future__ import annotations

from gridlayers.dso import LinDistFlowFeeder
from gridlayers.dso.operator import DSOOperator


class CautiousDSO(DSOOperator):
    """Plans against a voltage band tightened by a safety margin (pu) for forecast error."""

    def __init__(self, feeder: LinDistFlowFeeder, devices: dict[str, int], **params: object):
        margin = 0.01
        feeder.vm_max_pu -= margin
        feeder.vm_min_pu += margin
        super().__init__(feeder, devices, **params)
