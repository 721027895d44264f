"""JSON-ready state of what a simulator carries from one market interval to the next.

Checkpoints (:mod:`gridlayers.results.checkpoint`) hold, per entity, what these
functions return; ``run --resume`` hands it back to the simulators when it creates the
entities. Only state that changes a result is kept:

- DER devices: their frozen ``state`` dataclass (battery energy, MWh; EV sessions'
  delivered energy, MWh, and the fleet's clock, min; flexible-load shift, MWh; PV
  energy accounting, MWh), field by field, arrays as lists.
- Feeders: the complex bus voltages (pu) the lean AC power flow warm-starts from, so
  a resumed power flow starts where the uninterrupted one would have (Newton-Raphson
  then gives the same iterates, bit for bit).

The TSO market and the DSOs carry nothing between intervals: every forward and
real-time clearing and every DSO problem is set up from the interval's inputs (solver
warm starts do not change their optima), and every random draw is made from the
scenario's seed when the simulators are set up.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from gridlayers.der.base import Device
from gridlayers.grid import Feeder


def device_state(device: Device) -> dict[str, Any]:
    """Return a device's state as JSON-ready values (units of its state dataclass)."""
    state = device.state  # type: ignore[attr-defined] - every device kind has one
    return {f.name: _plain(getattr(state, f.name)) for f in dataclasses.fields(state) if f.init}


def restore_device(device: Device, data: dict[str, Any]) -> None:
    """Set a device's state from :func:`device_state` output (arrays keep their dtype)."""
    state = device.state  # type: ignore[attr-defined]
    values = {}
    for f in dataclasses.fields(state):
        if not f.init or f.name not in data:
            continue
        current = getattr(state, f.name)
        value = data[f.name]
        values[f.name] = (
            np.asarray(value, dtype=current.dtype) if isinstance(current, np.ndarray) else value
        )
    device.state = dataclasses.replace(state, **values)  # type: ignore[attr-defined]


def aggregator_state(devices: list[Device]) -> dict[str, Any]:
    """Return ``{"devices": {device id: state}}`` for an aggregator's devices."""
    return {"devices": {d.device_id: device_state(d) for d in devices}}


def restore_aggregator(devices: list[Device], data: dict[str, Any]) -> None:
    """Restore every device of :func:`aggregator_state` output (all must be present)."""
    saved = data["devices"]
    missing = sorted({d.device_id for d in devices} - set(saved))
    if missing:
        msg = f"checkpoint has no state for devices {missing[:5]}"
        raise ValueError(msg)
    for device in devices:
        restore_device(device, saved[device.device_id])


def feeder_state(feeder: Feeder) -> dict[str, Any]:
    """Return the power flow's warm-start voltages (pu): ``{"v_re": [...], "v_im": [...]}``.

    Empty if the feeder runs through pandapower's ``runpp`` (its warm start is left
    out; a resumed run then differs from an uninterrupted one within the power-flow
    tolerance).
    """
    solver = getattr(feeder, "_lean", None)
    if solver is None:
        return {}
    v = np.asarray(solver._v)  # noqa: SLF001 - the warm start is the solver's state
    return {"v_re": v.real.tolist(), "v_im": v.imag.tolist()}


def restore_feeder(feeder: Feeder, data: dict[str, Any]) -> None:
    """Set the power flow's warm-start voltages from :func:`feeder_state` output."""
    solver = getattr(feeder, "_lean", None)
    if solver is None or not data:
        return
    v = np.asarray(data["v_re"], dtype=float) + 1j * np.asarray(data["v_im"], dtype=float)
    if v.shape != solver._v.shape:  # noqa: SLF001
        msg = f"checkpoint has {v.size} feeder voltages, the feeder {solver._v.size}"  # noqa: SLF001
        raise ValueError(msg)
    solver._v = v  # noqa: SLF001


def _plain(value: Any) -> Any:
    """Return ``value`` as JSON-ready Python (arrays and numpy scalars unpacked)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
