"""The ``ibcheck`` command line (also ``python -m numerics``).

Commands: ``derive`` (the symbolic derivation), ``design`` (an activation for a target
penalty), ``check`` (run the checks on one activation and
write its report), ``report`` (the cross-activation comparison report; with no arguments, the
standard suite into ``reports/``), ``list`` (built-in activations and checks).  Every user
error prints one line on stderr and exits with status 2; no traceback.  See ``docs/reports.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import sys
from pathlib import Path
from typing import NoReturn

import theory  # light: its names load on first use (sympy only for the commands that compute)
from theory.errors import IbcheckError

from . import threads
from .catalogue import ACTIVATIONS, PROFILES, listed_checks

FORMATS = ("text", "markdown", "latex", "json")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, status 2
        raise IbcheckError(f"{self.prog}: {message}")


def _key_values(pairs: list[str] | None, flag: str, key: str) -> list[tuple[str, str]]:
    """``--flag KEY=VALUE`` arguments split into (key, value), stripped; malformed or repeated keys are an error."""
    split: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise IbcheckError(f"--{flag} takes {key}=VALUE, got {pair!r}")
        if name.strip() in split:
            raise IbcheckError(f"--{flag} {name.strip()} is given twice ({split[name.strip()]!r} and {value.strip()!r}); "
                               "give it once")
        split[name.strip()] = value.strip()
    return list(split.items())


def _parameters(pairs: list[str]) -> dict:
    from theory.parsing import parse_formula

    values = {}
    for name, value in _key_values(pairs, "param", "NAME"):
        number = parse_formula(value)
        if not number.is_number:
            raise IbcheckError(f"--param {name}: the value must be a number, got {value!r}")
        values[name] = number
    return values


def _activation(args) -> theory.Activation:
    return theory.activation(args.activation, **_parameters(args.param))


def cmd_derive(args) -> int:
    if args.activation is None and args.architecture is None:
        raise IbcheckError("derive: give an activation (e.g. relu) or --architecture N0-N1-...-NL (e.g. 4-8-8-1)")
    if args.activation is not None and args.architecture is not None:
        raise IbcheckError("derive: give either an activation or --architecture, not both")
    if args.architecture is not None:
        from theory.functional_dimension import derive_architecture

        print(derive_architecture(args.architecture).render(args.format))
        return 0
    act = _activation(args)
    if args.kernel == "gaussian":
        from theory.gaussian_kernels import gaussian_kernel_derivation

        if args.dim != 1:
            raise IbcheckError("derive --kernel gaussian: the Gaussian-weight kernels take 1-D inputs (--dim 1)")
        kern = theory.gaussian_kernel(act, args.weight_variance, args.bias_variance)
        print(gaussian_kernel_derivation(kern).render(args.format))
        return 0
    result = theory.derive(act, args.dim)
    if result.status == "not_applicable":
        raise IbcheckError(f"{act.label}: {result.notes[0] if result.notes else 'not applicable'}")
    print(result.render(args.format))
    return 0


def cmd_design(args) -> int:
    from theory.design import design_activation
    from theory.parsing import parse_formula
    from theory.symbols import omega

    target = parse_formula(args.target, variable=("omega", omega))
    print(design_activation(target, args.dim, args.phase).derivation().render(args.format))
    return 0


def _options(pairs: list[str]) -> dict:
    return dict(_key_values(pairs, "option", "KEY"))


def _only(text: str | None) -> list[str] | None:
    """The check ids of ``--only a,b`` (None without the option); an empty list is an error."""
    if text is None:
        return None
    ids = [c.strip() for c in text.split(",") if c.strip()]
    if not ids:
        raise IbcheckError(f"--only takes comma-separated check ids (see `ibcheck list`), got {text!r}")
    return ids


def _run_and_write(args, specs, title: str, out: str):
    """Run the checks on ``specs`` (cache, executor and progress as the options say); write the report."""
    # imported here so that `derive` and `list` start without torch and matplotlib
    from .cache import ResultCache
    from .executor import executor_from_name
    from .report import ensure_writable, write_report
    from .suite import run_suite

    if not 0 <= args.seed < 2**32:
        raise IbcheckError(f"--seed must be an integer from 0 to 2^32 - 1 (numpy's seed range), got {args.seed}")
    if args.jobs is not None and args.jobs < 1:
        raise IbcheckError(f"--jobs must be at least 1, got {args.jobs}")
    only = _only(getattr(args, "only", None))
    if args.out is not None and not args.out.strip():
        raise IbcheckError("--out must name a folder, got an empty string")
    threads.configure(args.threads)
    directory = ensure_writable(out, args.force)  # before minutes of work, not after
    executor = executor_from_name(args.executor, args.jobs)
    try:
        report = run_suite(specs, profile=args.profile, seed=args.seed, options=_options(args.option), only=only,
                           executor=executor, cache=ResultCache(read=not args.no_cache),
                           title=title, command=shlex.join(["ibcheck", *args.argv]), until_decided=args.until_decided)
    finally:
        close = getattr(executor, "close", None)  # a MODULE:FACTORY executor may have none
        if callable(close):
            close()
    return report, write_report(report, directory, args.force)


def _check_folder(act: theory.Activation) -> str:
    """``reports/<label>`` for a built-in; a formula's folder gets a short hash of it (distinct formulas, distinct folders)."""
    from .report.formatting import slug

    name = slug(act.label)
    if not act.builtin:
        name = f"formula-{name[:40]}-{hashlib.sha256(act.label.encode()).hexdigest()[:8]}"
    return str(Path("reports") / name)


def cmd_check(args) -> int:
    from .suite import ActivationSpec

    act = _activation(args)
    spec = ActivationSpec(args.activation, tuple(_parameters(args.param).items()))
    report, paths = _run_and_write(args, [spec], f"ibcheck check: {act.label}", args.out or _check_folder(act))
    results = report.activations[0].results
    if args.format == "json":
        from .schemas import SCHEMA_VERSION

        print(json.dumps([dict(r.to_dict(plots=False), schema_version=SCHEMA_VERSION) for r in results], indent=2))
        print(f"ibcheck: report written to {paths['index.html']}", file=sys.stderr)
    else:
        width = max(len(r.check) for r in results) if results else 5
        for r in results:
            print(f"{r.check:<{width}}  {r.verdict:<14}  {r.reason}")
        print(f"\nReport: {paths['index.html']} (also report.md, report.json)")
    return 0


def cmd_report(args) -> int:
    from .suite import ActivationSpec, standard_suite

    if args.activations:
        specs, title = [ActivationSpec(a) for a in args.activations], "ibcheck report"
    else:
        specs, title = standard_suite(), "ibcheck report: the standard suite"
    report, paths = _run_and_write(args, specs, title, args.out)
    counts = ", ".join(f"{n} {verdict.replace('_', ' ')}" for verdict, n in report.counts().items())
    print(f"{len(report.activations)} activations x {len(report.checks)} checks: {counts}; "
          f"{report.cache['hits']} results from the cache; {report.runtime_s:.0f} s")
    for label, result in report.problems():
        print(f"  {label} / {result.check}: {result.verdict}: {result.reason}")
    print(f"Report: {paths['index.html']} (also report.md, report.json)")
    return 0


def cmd_list(args) -> int:
    print("Built-in activations:")
    for name, parameters, description in ACTIVATIONS:  # the catalogue: sympy not imported
        params = f" ({', '.join(parameters)})" if parameters else ""
        print(f"  {name + params:<22} {description}")
    print("\nChecks:")
    for check_id, title, claim, options in listed_checks():  # the catalogue: no check module (torch) imported
        print(f"  {check_id:<22} {title} [{claim}]")
        if options:
            print(f"  {'':<22}   options: {', '.join(options)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ibcheck", description="Implicit-bias theory checker for shallow networks.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def run_args(p, default_out: str | None, shown_out: str):
        p.add_argument("--profile", choices=PROFILES, default="quick",
                       help="quick (minutes for the whole suite) or full (the notes' reference sizes)")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--option", action="append", metavar="KEY=VALUE",
                       help="setup option of the selected checks (repeatable), e.g. --option seeds=10; "
                            "an option no selected check reads is an error that names the valid keys")
        p.add_argument("--until-decided", type=int, default=0, metavar="SEEDS",
                       help="seed budget: while a check's outcome is undecided (interval straddles the "
                            "tolerance, too few seeds), rerun it with twice the seeds, up to SEEDS in all")
        p.add_argument("--out", default=default_out,
                       help=f"folder for index.html, report.md and report.json (default {shown_out})")
        p.add_argument("--force", action="store_true",
                       help="write into --out even if it holds files the report did not write (they are left "
                            "alone; index.html, report.md and report.json are replaced)")
        p.add_argument("--no-cache", action="store_true",
                       help="recompute every result instead of reusing cached ones (fresh results are still stored)")
        p.add_argument("--jobs", type=int, default=None,
                       help="worker processes (default: one per CPU; 1 runs everything in this process)")
        p.add_argument("--executor", default="process",
                       help="process (default), serial, dask[:ADDRESS], ray[:ADDRESS] (a local cluster without an "
                            "address), or MODULE:FACTORY for another engine (see docs/reports.md)")
        p.add_argument("--threads", default="auto", metavar="auto|N",
                       help="threads for large linear algebra (auto: each task's share of the CPUs); small-tensor "
                            "work always runs on one thread (see docs/reports.md)")

    def activation_args(p):
        p.add_argument("activation", help="built-in name (see `ibcheck list`) or a formula in x, "
                                          "e.g. 'x/(1+abs(x))' or 'leaky_relu(a=0.2)'")
        p.add_argument("--param", action="append", metavar="NAME=VALUE",
                       help="parameter value (repeatable), e.g. --param a=0.2")

    p = sub.add_parser("derive", help="derive the theory's predictions for an activation (or, with "
                                      "--architecture, a ReLU network's functional dimension), step by step")
    p.add_argument("activation", nargs="?", help="built-in name (see `ibcheck list`) or a formula in x, "
                                                 "e.g. 'x/(1+abs(x))'; omit it with --architecture")
    p.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="parameter value (repeatable), e.g. --param a=0.2")
    p.add_argument("--architecture", metavar="N0-N1-...-NL",
                   help="derive the functional dimension of a ReLU network instead, e.g. 4-8-8-1")
    p.add_argument("--dim", type=int, default=1, help="input dimension d (default 1)")
    p.add_argument("--kernel", choices=("flat", "gaussian"), default="flat",
                   help="flat: the full derivation with the flat-offset random-feature kernel (default); gaussian: "
                        "the Gaussian-weight NNGP and NTK instead (see docs/theory.md)")
    p.add_argument("--weight-variance", type=float, default=1.0,
                   help="with --kernel gaussian: variance of the first-layer weights (default 1)")
    p.add_argument("--bias-variance", type=float, default=1.0,
                   help="with --kernel gaussian: variance of the first-layer biases (default 1)")
    p.add_argument("--format", choices=FORMATS, default="text")
    p.set_defaults(func=cmd_derive)

    p = sub.add_parser("design", help="design an activation whose kernel-regime spectral penalty is a given W(omega)")
    p.add_argument("target", help="the target penalty W*(omega) as a formula in omega, e.g. '(1+omega^2)^2'")
    p.add_argument("--phase", choices=("minimum", "zero"), default="minimum",
                   help="minimum: one-sided (ReLU-like) activation; zero: even activation")
    p.add_argument("--dim", type=int, default=1, help="input dimension d (default 1)")
    p.add_argument("--format", choices=FORMATS, default="text")
    p.set_defaults(func=cmd_design)

    p = sub.add_parser("check", help="run the checks that apply to an activation")
    activation_args(p)
    p.add_argument("--only", help="comma-separated check ids")
    run_args(p, None, "reports/<activation>")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="what to print: a verdict per line, or the JSON list of results (the report is written either way)")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("report", help="run the checks on many activations (default: the standard suite, every "
                                      "built-in) and write the comparison report")
    p.add_argument("--activations", nargs="+", action="extend", metavar="ACTIVATION",
                   help="built-in names, calls such as 'leaky_relu(a=0.2)' or formulas (default: every built-in)")
    run_args(p, "reports", "reports")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("list", help="list built-in activations and checks")
    p.set_defaults(func=cmd_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)
        return args.func(args)
    except IbcheckError as err:
        print(f"ibcheck: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ibcheck: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0


def run(argv: list[str] | None = None) -> NoReturn:
    """The ``ibcheck`` program (console script, ``python -m numerics``): :func:`main`, its output
    flushed, then the process ends at once (``os._exit``) with main's status.

    A normal interpreter exit tears down every module and object first: with torch, sympy,
    matplotlib and a suite's results loaded that took 0.6-0.9 CPU-s (measured after ``ibcheck
    report``, issue 18), serial time at the very end of a run, for memory the operating system
    takes back anyway.  Everything the commands write is closed when :func:`main` returns (report
    files, cache entries; executors closed, process pools shut down), so only the standard streams
    need flushing.  An exception escaping :func:`main` (a bug) exits the normal way, with its
    traceback.  Callers in Python (tests, notebooks) use :func:`main`, which returns.
    """
    status = main(argv)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`) or a stream closed by main
            pass
    os._exit(status)


if __name__ == "__main__":
    run()
