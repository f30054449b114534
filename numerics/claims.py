"""The claims ibcheck judges: id, statement, source, and which checks judge them.

Claim ids are namespaced by the theory note they come from (``SB`` spectral bias, ``SR`` stable
rank and margins, ``FD`` functional dimension), e.g. ``SB-P4`` is prediction P4 of
``spectral_bias.md``.  :data:`CHECK_CLAIMS` maps every registered check to the claims it
judges; reports show the claims of their checks, and ``docs/claims.md`` is written from this
registry and a report's criteria and outcomes by :func:`claims_markdown`
(``python -m numerics.claims reports/report.json > docs/claims.md``).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass

_SB = "Sahs, Pyle, Anselmi, Patel 2025 (spectral bias shaped by the activation); notes: spectral_bias.md"
_SR = "Kou, Chen, Gu 2023 (stable rank of two-layer nets on nearly-orthogonal data); notes: stable_rank.md"
_FREI = "Frei et al. 2023 (one-step rank collapse); notes: stable_rank.md"
_FD = "Bona-Pellissier, Malgouyres, Bachoc 2024 (geometry-induced implicit regularization); notes: functional_dimension.md"


@dataclass(frozen=True)
class Claim:
    """A statement a check judges, where it comes from, and its kind (``theorem``, ``derived``,
    ``empirical``: a paper's experiment, ``note``: the notes' own derivation)."""

    id: str
    statement: str
    source: str
    section: str
    kind: str = "theorem"


CLAIMS: dict[str, Claim] = {c.id: c for c in [
    Claim("SB-P1", "The regular part of the generalized Fourier transform equals F[sigma^(m)](omega)/(i omega)^m; "
          "point masses at 0 come from the asymptotic polynomials.", _SB, "Sec. 3, 6.4 P1", "derived"),
    Claim("SB-P4", "1D ReLU random features with a uniform init converge to the natural cubic spline (sup error "
          "<= 2% of max|y| at n = 1e5, decaying like n^-1/2).", _SB, "Sec. 2, 6.4 P4"),
    Claim("SB-P5", "A Gaussian init matches the (1+x^2)^2-weighted spline within 2% and not the natural cubic "
          "spline.", _SB, "Sec. 2.4, 6.4 P5"),
    Claim("SB-P6", "tanh and erf random features match their conditionally positive definite kernels within 1%.",
          _SB, "Sec. 2.4, 6.4 P6"),
    Claim("SB-P7", "In d dimensions, ReLU with uniform directions and flat offsets gives the r^3 polyharmonic "
          "spline within 2%.", _SB, "Sec. 2.2, 6.4 P7"),
    Claim("SB-P8", "Spectral rate: initial decay rates of sinusoidal residuals at omega_1, omega_2 have ratio "
          "W(omega_2)/W(omega_1) within 5%.", _SB, "Sec. 2.3, 6.4 P8"),
    Claim("SB-P9", "Phase invariance: activations with equal |sigma_hat| give the same kernel-regime "
          "interpolant (within Monte Carlo error).", _SB, "Sec. 4, 6.4 P9", "derived"),
    Claim("SB-K", "Kernel regime: training a wide network stays close to its linearization (lazy training), "
          "so the trained function is the kernel interpolant.", _SB, "Sec. 2.1"),
    Claim("SB-SPEC", "The implicit bias is shaped by the activation: each activation's kernel-regime "
          "interpolant is its own penalty minimizer, distinguishable from other activations'.", _SB,
          "abstract; Sec. 2.3"),
    Claim("SB-DESIGN", "Activation design: an activation whose |sigma_hat|^-2 is a requested W(omega) gives "
          "that spectral penalty in the kernel regime.", _SB, "Sec. 4", "derived"),
    Claim("SB-P10", "Datapoint pinning (kink at 0): a zero-plane at a data point stays there when the sign "
          "rule r_k v > 0 holds (Filippov sliding mode).", _SB, "Sec. 5.2, 6.4 P10", "derived"),
    Claim("SB-P11", "Adaptive vs kernel regime: in the adaptive regime most in-hull breakpoints sit at data "
          "points; in the kernel regime they barely move.", _SB, "Sec. 5, 6.4 P11"),
    Claim("SB-P12", "Smooth sigma: zero-planes settle at offsets ~ 1/rho from data points on the stable branch "
          "A sigma'' > 0 (the notes' derivation; fails for tanh/sigmoid/erf).", _SB, "Sec. 5.4, 6.4 P12", "note"),
    Claim("SB-P13", "Zero-planes gather in clusters at data points; the number of distinct clusters is <= N.",
          _SB, "abstract; 6.4 P13", "empirical"),
    Claim("SB-ATTR", "Pinned, clustered configurations are stable fixed points (attractors) of the adaptive "
          "gradient flow.", _SB, "Sec. 5.2, 5.4, 5.5", "derived"),
    Claim("SB-MNIST", "On image data, adaptive-regime zero-planes pass closer to training images than at init "
          "or in the kernel regime, and form clusters.", _SB, "Sec. 6.4 (MNIST)", "empirical"),
    Claim("SR-P1", "Leaky ReLU: each class's weight matrix converges to stable rank 1.", _SR, "Sec. 2.1, 4.2 P1"),
    Claim("SR-P2", "The full first-layer matrix is not rank 1: its stable rank tends to 2 for two classes.",
          _SR, "Sec. 2.1, 4.2 P2"),
    Claim("SR-P4", "Loss constant: L(T) T -> (m/eta) 1^T G^-1 1.", _SR, "Sec. 2.1, 4.2 P4"),
    Claim("SR-P5", "The loss decays like 1/t.", _SR, "Sec. 2.1, 4.2 P5"),
    Claim("SR-P6", "Margin law: q_i = log T + log(eta/(n m)) - log h_i + o(1).", _SR, "Sec. 1.3, 4.2 P6"),
    Claim("SR-P7", "Normalized margins become equal.", _SR, "Sec. 1.3, 4.2 P7"),
    Claim("SR-P8", "The gap sr - 1 decays like 1/log^2 t.", _SR, "Sec. 2.1, 4.2 P8", "derived"),
    Claim("SR-P9", "ReLU on orthogonal data: the per-class stable rank stays near its init-mask value (about 2), "
          "not 1.", _SR, "Sec. 2.2, 4.2 P9"),
    Claim("SR-P11", "Frei et al.: at small init, one GD step collapses the stable rank.", _FREI,
          "Sec. 2.3, 4.2 P11"),
    Claim("SR-P12", "Frei et al.: at the default init there is no collapse.", _FREI, "Sec. 2.3, 4.2 P12"),
    Claim("SR-P13", "The decision boundary is nearly linear.", _FREI, "Sec. 2.3, 4.2 P13"),
    Claim("SR-P14", "Negative control: without near-orthogonality (small d) the rank does not collapse.", _SR,
          "Sec. 2.4, 4.2 P14", "note"),
    Claim("SR-P15", "Negative control: with too large a step size the stable rank plateaus at the one-step "
          "value.", _SR, "Sec. 2.4, 4.2 P15", "note"),
    Claim("SR-P16", "Generic activations: small init gives per-class rank 1; the never-activated fraction equals "
          "P(z_0 < z*) for the barrier z*.", _SR, "Sec. 3, 4.2 P16", "derived"),
    Claim("FD-F1", "BFD <= min(n N_L, N_par - H).", _FD, "Sec. 1.5, 5 F1"),
    Claim("FD-F2", "The H rescaling vectors lie in the kernel of the Jacobian.", _FD, "Sec. 1.6, 5 F2"),
    Claim("FD-F3", "BFD is invariant under rescalings and permutations.", _FD, "Sec. 1.6, 5 F3"),
    Claim("FD-F4", "BFD is determined by the activation patterns (almost surely).", _FD, "Sec. 1.4, 5 F4"),
    Claim("FD-F5", "Shallow scalar networks: the closed form equals the BFD.", _FD, "Sec. 1.4, 5 F5", "derived"),
    Claim("FD-F6", "Region bound and input-geometry bound.", _FD, "Sec. 1.5, 5 F6", "derived"),
    Claim("FD-F7", "Float64 rank equals the exact rational rank; autodiff and closed-form Jacobians agree.", _FD,
          "Sec. 3, 5 F7", "derived"),
    Claim("FD-F8", "Sampling theorem: BFD on nested samples is nondecreasing, <= CFFD, and reaches it with "
          "probability -> 1.", _FD, "Sec. 1.8, 5 F8"),
    Claim("FD-F9", "CFFD equals the frozen rank of the achievable patterns.", _FD, "Sec. 1.7, 5 F9"),
    Claim("FD-F10", "At random init, Gaussian-input BFD >= 0.9 (N_par - H) for narrowing architectures.", _FD,
          "Sec. 4, 5 F10", "empirical"),
    Claim("FD-F11", "Trained nets (width >= 20): test BFD below the random-input BFD.", _FD, "Sec. 4, 5 F11",
          "empirical"),
    Claim("FD-F12", "Geometry-induced regularization: BFD on train and test inputs decreases during training.",
          _FD, "Sec. 2, 5 F12", "empirical"),
    Claim("FD-F13", "Numerical softmax rank <= centred-logit rank <= logit rank.", _FD, "Sec. 3.3, 5 F13",
          "derived"),
]}

#: the claims each registered check judges
CHECK_CLAIMS: dict[str, tuple[str, ...]] = {
    "transform": ("SB-P1",),
    "kernel-fit-1d": ("SB-P4", "SB-P5", "SB-P6"),
    "kernel-fit-2d": ("SB-P7",),
    "kernel-training": ("SB-K",),
    "kernel-rate": ("SB-P8",),
    "activation-specificity": ("SB-SPEC",),
    "design-round-trip": ("SB-DESIGN", "SB-P9"),
    "pinning": ("SB-P10", "SB-P11", "SB-P12"),
    "zero-plane-clusters": ("SB-P13",),
    "attractor-stability": ("SB-ATTR",),
    "digits-zero-planes": ("SB-MNIST",),
    "stable-rank": ("SR-P1", "SR-P2", "SR-P8", "SR-P9", "SR-P14", "SR-P15"),
    "margins": ("SR-P4", "SR-P5", "SR-P6", "SR-P7", "SR-P13"),
    "one-step-collapse": ("SR-P11", "SR-P12"),
    "rank-conditions": ("SR-P16",),
    "fd-theorems": ("FD-F1", "FD-F2", "FD-F3", "FD-F4", "FD-F5", "FD-F6", "FD-F7"),
    "fd-sampling": ("FD-F8", "FD-F9", "FD-F3"),
    "fd-training": ("FD-F10", "FD-F11", "FD-F12", "FD-F13"),
}


def claims_of(check_id: str) -> list[Claim]:
    """The claims a check judges (empty for a check not in the registry)."""
    return [CLAIMS[c] for c in CHECK_CLAIMS.get(check_id, ())]


def claims_markdown(report: dict | None = None) -> str:
    """``docs/claims.md``: every claim with its statement, source and checks; with a report
    (``report.json`` as a dict), the judged criteria of each check and its outcomes there."""
    outcomes: dict[str, Counter] = {}
    criteria: dict[str, list[str]] = {}
    for activation in (report or {}).get("activations", []):
        for result in activation.get("results", []):
            outcomes.setdefault(result["check"], Counter())[result["verdict"]] += 1
            names = criteria.setdefault(result["check"], [])
            names += [c["name"] for c in result.get("criteria") or [] if c.get("judged") and c["name"] not in names]
    checks_of = {claim: [c for c, ids in CHECK_CLAIMS.items() if claim in ids] for claim in CLAIMS}
    lines = ["# Claims", "",
             "Every claim ibcheck judges, with its statement, its source (paper and section of the theory "
             "note in `shared/theory/`), the checks that judge it"
             + (", their judged criteria and their outcomes over the standard suite" if report else "")
             + ". Kinds: *theorem* (stated by the paper), *derived* (derived in the notes and checked), "
               "*empirical* (a paper's experimental claim), *note* (the notes' own derivation).",
             "", "Generated by `python -m numerics.claims reports/report.json > docs/claims.md`"
             + (f" from a {report.get('profile', '?')}-profile report of {len(report.get('activations', []))} "
                f"activations (seed {report.get('seed', '?')})." if report else "."), ""]
    for prefix, title in (("SB", "Spectral bias"), ("SR", "Stable rank and margins"), ("FD", "Functional dimension")):
        lines += [f"## {title}", ""]
        for claim in (c for c in CLAIMS.values() if c.id.startswith(prefix)):
            lines += [f"### {claim.id}", "", claim.statement, "",
                      f"- kind: {claim.kind}; source: {claim.source}, {claim.section}",
                      f"- judged by: {', '.join(f'`{c}`' for c in checks_of[claim.id]) or 'no check yet'}"]
            for check in checks_of[claim.id]:
                if check in criteria:
                    lines.append(f"- `{check}` criteria: {'; '.join(criteria[check]) or 'none judged'}")
                if check in outcomes:
                    lines.append(f"- `{check}` outcomes: " + ", ".join(
                        f"{n} {v.replace('_', ' ')}" for v, n in sorted(outcomes[check].items())))
            lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m numerics.claims [report.json]
    data = json.loads(open(sys.argv[1]).read()) if len(sys.argv) > 1 else None
    sys.stdout.write(claims_markdown(data))
