"""Scenario variants for scale studies: the same system with more LDAs.

Pure functions on the JSON-ready scenario dict (``Scenario.model_dump(mode="json",
by_alias=True)``); validate the result with ``Scenario.model_validate``.
"""

from __future__ import annotations

import copy


def many_ldas(data: dict, n: int) -> dict:
    """Return ``data`` with ``n`` LDAs: its LDAs repeated at other 115 kV load buses.

    LDA ``i`` copies LDA ``i % len(ldas)`` (feeder, DER, limits) under the name
    ``<name><i>`` at the ``i``-th 115 kV bus with a load of the transmission case, the
    scenario's own interface buses first (the "30-LDA variant" of the default system).

    Raises
    ------
    ValueError
        If the transmission case has fewer than ``n`` 115 kV load buses.

    """
    from gridlayers.grid.networks import transmission_network
    from gridlayers.scenarios.schema import TransmissionConfig

    net = transmission_network(TransmissionConfig.model_validate(data["transmission"]))
    hv = set(net.bus.index[net.bus.vn_kv == 115.0])
    base = data["ldas"]
    used = [lda["interface_bus"] for lda in base]
    buses = used + sorted((set(net.load.bus) & hv) - set(used))
    if n > len(buses):
        msg = f"only {len(buses)} 115 kV load buses for {n} LDAs"
        raise ValueError(msg)
    out = copy.deepcopy(data)
    out["ldas"] = [
        {**copy.deepcopy(base[i % len(base)]), "name": f"{base[i % len(base)]['name']}{i}",
         "interface_bus": int(buses[i])}
        for i in range(n)
    ]  # fmt: skip
    return out
