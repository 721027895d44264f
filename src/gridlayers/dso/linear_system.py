r"""Direct solution of the linearised branch-flow equations for fixed injections.

Notes
-----
Unknowns (per unit on the system base): squared voltage ``w_i`` of every node,
and the active/reactive power ``P_c, Q_c`` entering the series impedance of edge
``c`` at its parent-side internal node ``a`` (see :mod:`gridlayers.dso.topology`).
With ``w_a = w_p / tap_p^2`` and ``w_b = w_c / tap_c^2`` the DistFlow equations are

.. math::

    w_b &= w_a - 2 (r P_c + x Q_c) + (r^2 + x^2)\,\ell_c \\
    0 &= p_i - g_{s,i} w_i - \sum_{c \in ch(i)} (P_c + g_{a,c} w_{a,c})
          + (P_i - r_i \ell_i - g_{b,i} w_{b,i}) \\
    0 &= q_i + b_{s,i} w_i - \sum_{c \in ch(i)} (Q_c - b_{a,c} w_{a,c})
          + (Q_i - x_i \ell_i + b_{b,i} w_{b,i})

with the squared series current ``l_c = (P_c^2 + Q_c^2) / w_a`` replaced by the
affine model ``l_c = a^P_c P_c + a^Q_c Q_c + a^W_c w_a + a^0_c``
(:func:`loss_coefficients`). With all ``a = 0`` this is plain LinDistFlow.

"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from gridlayers.dso.topology import RadialNetwork


@dataclass(frozen=True)
class LossCoefficients:
    """Affine model of the squared series current ``l = ap*P + aq*Q + aw*w_a + a0`` (pu).

    Parameters
    ----------
    ap, aq, aw, a0 : numpy.ndarray
        Coefficients per edge (index 0 unused), all per unit.

    """

    ap: np.ndarray
    aq: np.ndarray
    aw: np.ndarray
    a0: np.ndarray

    @staticmethod
    def lossless(n: int) -> LossCoefficients:
        """Return all-zero coefficients (plain LinDistFlow) for ``n`` nodes."""
        return LossCoefficients(np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n))


@dataclass(frozen=True)
class OperatingPoint:
    """A branch-flow state in per unit: the base point of the loss linearisation.

    Parameters
    ----------
    w_pu : numpy.ndarray
        Squared voltage magnitude per node (pu^2).
    p_pu, q_pu : numpy.ndarray
        Series sending-end active/reactive flow per edge (pu; index 0 unused).

    """

    w_pu: np.ndarray
    p_pu: np.ndarray
    q_pu: np.ndarray


def loss_coefficients(
    net: RadialNetwork, point: OperatingPoint | None, method: str = "tangent"
) -> LossCoefficients:
    """Linearise the squared series current of every edge around ``point``.

    Parameters
    ----------
    net : RadialNetwork
        Tree and branch data.
    point : OperatingPoint or None
        Base operating point; ``None`` gives the lossless model.
    method : {"tangent", "fixed"}
        ``"tangent"``: first-order Taylor expansion (exact value and gradient at the base
        point, gives marginal losses). ``"fixed"``: losses frozen at the base point.

    Returns
    -------
    LossCoefficients
        Coefficients of ``l_c`` (pu).

    Notes
    -----
    With ``l = (P^2 + Q^2) / w_a`` and base values ``P0, Q0, w0, l0``, the tangent is
    ``l ~ (2 P0 P + 2 Q0 Q - l0 w_a) / w0`` (``l`` is homogeneous of degree one, so the
    constant term vanishes).

    """
    if point is None:
        return LossCoefficients.lossless(net.n_nodes)
    parent = np.maximum(net.parent, 0)
    w_a = point.w_pu[parent] / np.where(net.tap_p > 0, net.tap_p, 1.0) ** 2  # root: no edge
    l0 = (point.p_pu**2 + point.q_pu**2) / w_a
    l0[0] = 0.0
    if method == "fixed":
        zero = np.zeros(net.n_nodes)
        return LossCoefficients(zero, zero.copy(), zero.copy(), l0)
    if method != "tangent":
        msg = f"unknown loss linearisation method {method!r}"
        raise ValueError(msg)
    ap, aq, aw = 2.0 * point.p_pu / w_a, 2.0 * point.q_pu / w_a, -l0 / w_a
    ap[0] = aq[0] = aw[0] = 0.0
    return LossCoefficients(ap, aq, aw, np.zeros(net.n_nodes))


def solve_linear_branch_flow(
    net: RadialNetwork, p_pu: np.ndarray, q_pu: np.ndarray, coef: LossCoefficients
) -> OperatingPoint:
    """Solve the linear branch-flow equations for fixed nodal injections.

    Parameters
    ----------
    net : RadialNetwork
        Tree and branch data.
    p_pu, q_pu : numpy.ndarray
        Net injection per node (pu, injection positive); the root's is ignored.
    coef : LossCoefficients
        Affine loss model.

    Returns
    -------
    OperatingPoint
        Squared voltages and series sending-end flows.

    """
    n = net.n_nodes
    c = np.arange(1, n)
    p = net.parent[1:]
    tp2, tc2 = net.tap_p[1:] ** 2, net.tap_c[1:] ** 2
    r, x = net.r_pu[1:], net.x_pu[1:]
    zz = r**2 + x**2
    ap, aq, aw, a0 = coef.ap[1:], coef.aq[1:], coef.aw[1:] / tp2, coef.a0[1:]
    iw, ip, iq = (lambda k: k), (lambda k: n - 1 + k), (lambda k: 2 * n - 2 + k)
    rows, cols, vals = [np.array([0])], [np.array([0])], [np.array([1.0])]

    def add(row: np.ndarray, col: np.ndarray, val: np.ndarray) -> None:
        rows.append(row)
        cols.append(col)
        vals.append(np.broadcast_to(val, row.shape).astype(float))

    # voltage drop, row c: w_c/tc2 - w_p/tp2 + 2(rP + xQ) - zz*l = zz*a0
    add(c, iw(c), 1.0 / tc2)
    add(c, iw(p), -1.0 / tp2 - zz * aw)
    add(c, ip(c), 2.0 * r - zz * ap)
    add(c, iq(c), 2.0 * x - zz * aq)
    # active balance at node c (row n-1+c) and reactive balance (row 2n-2+c)
    for base_row, flow, g_or_b, sgn, imp in (
        (n - 1, ip, net.gs_pu, -1.0, r),
        (2 * n - 2, iq, net.bs_pu, 1.0, x),
    ):
        ga = net.g_a_pu[1:] if sgn < 0 else -net.b_a_pu[1:]
        gb = net.g_b_pu[1:] if sgn < 0 else -net.b_b_pu[1:]
        add(base_row + c, iw(c), sgn * g_or_b[1:] - gb / tc2)
        add(base_row + c, flow(c), 1.0)
        add(base_row + c, ip(c), -imp * ap)
        add(base_row + c, iq(c), -imp * aq)
        add(base_row + c, iw(p), -imp * aw)
        keep = p > 0  # flows out of non-root parents
        add(base_row + p[keep], flow(c[keep]), -1.0)
        add(base_row + p[keep], iw(p[keep]), -ga[keep] / tp2[keep])
    matrix = sp.csc_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(3 * n - 2, 3 * n - 2),
    )
    rhs = np.concatenate(([net.vm_root_pu**2], zz * a0, -p_pu[1:] + r * a0, -q_pu[1:] + x * a0))
    sol = spla.spsolve(matrix, rhs)
    zero = np.zeros(1)
    return OperatingPoint(
        sol[:n],
        np.concatenate((zero, sol[n : 2 * n - 1])),
        np.concatenate((zero, sol[2 * n - 1 :])),
    )


def interface_flow_pu(
    net: RadialNetwork, p_pu: np.ndarray, q_pu: np.ndarray, point: OperatingPoint
) -> tuple[float, float]:
    """Return the net export ``(P, Q)`` from the root node into the transmission bus (pu).

    Parameters
    ----------
    net : RadialNetwork
        Tree and branch data.
    p_pu, q_pu : numpy.ndarray
        Nodal net injections (pu, injection positive).
    point : OperatingPoint
        Solved state.

    Returns
    -------
    tuple of float
        Export (injection positive) at the root, pu.

    """
    kids = np.flatnonzero(net.parent == 0)
    w0 = point.w_pu[0]
    w_a = w0 / net.tap_p[kids] ** 2
    p_out = np.sum(point.p_pu[kids] + net.g_a_pu[kids] * w_a)
    q_out = np.sum(point.q_pu[kids] - net.b_a_pu[kids] * w_a)
    return (
        float(p_pu[0] - net.gs_pu[0] * w0 - p_out),
        float(q_pu[0] + net.bs_pu[0] * w0 - q_out),
    )
