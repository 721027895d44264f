"""mosaik agents: DER aggregators and per-LDA DSOs (thin adapters over the pure cores).

Every market interval ``k`` (mosaik time ``t0 = k * interval_s``) runs in phases:

``t0 + 0``  aggregators offer (forecasts) → DSOs build virtual resources / forward →
            TSO clears
``t0 + 1``  awards reach DSOs (and aggregators under Minimal DSO) over time-shifted
            links; DSOs disaggregate, check or redispatch
``t0 + 2``  final set-points reach aggregators, which dispatch devices with actual
            conditions; feeders run AC power flow; everything is stored
"""

#: Phase offsets (mosaik seconds) inside a market interval.
PHASE_OFFER, PHASE_AWARD, PHASE_DISPATCH = 0, 1, 2
