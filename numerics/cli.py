"""The ``ibcheck`` command line (also ``python -m numerics``).

Commands: ``derive`` (the symbolic derivation), ``check`` (run the checks on one activation),
``list`` (built-in activations and checks).  Every user error prints one line on stderr and
exits with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys

import theory
from theory.errors import IbcheckError
from theory.parsing import parse_formula

from .checks import PROFILES, Context, all_checks, run_checks

FORMATS = ("text", "markdown", "latex", "json")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, status 2
        raise IbcheckError(f"{self.prog}: {message}")


def _parameters(pairs: list[str]) -> dict:
    values = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise IbcheckError(f"--param takes NAME=VALUE, got {pair!r}")
        number = parse_formula(value)
        if not number.is_number:
            raise IbcheckError(f"--param {name}: the value must be a number, got {value!r}")
        values[name.strip()] = number
    return values


def _activation(args) -> theory.Activation:
    return theory.activation(args.activation, **_parameters(args.param))


def cmd_derive(args) -> int:
    act = _activation(args)
    result = theory.derive(act, args.dim)
    if result.status == "not_applicable":
        raise IbcheckError(f"{act.label}: {result.notes[0] if result.notes else 'not applicable'}")
    print(result.render(args.format))
    return 0


def cmd_check(args) -> int:
    act = _activation(args)
    only = [c.strip() for c in args.only.split(",") if c.strip()] if args.only else None
    options = {}
    for pair in args.option or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise IbcheckError(f"--option takes KEY=VALUE, got {pair!r}")
        options[key.strip()] = value.strip()
    context = Context(profile=args.profile, seed=args.seed, options=options)
    results = run_checks(act, context, only)
    if args.format == "json":
        print(json.dumps([r.to_dict(plots=False) for r in results], indent=2))
    else:
        width = max(len(r.check) for r in results) if results else 5
        for r in results:
            print(f"{r.check:<{width}}  {r.verdict:<14}  {r.reason}")
    return 0


def cmd_list(args) -> int:
    print("Built-in activations:")
    for name, spec in theory.BUILTINS.items():
        params = f" ({', '.join(spec.parameters)})" if spec.parameters else ""
        print(f"  {name + params:<22} {spec.description}")
    print("\nChecks:")
    for check in all_checks().values():
        print(f"  {check.id:<22} {check.title} [{check.claim}]")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ibcheck", description="Implicit-bias theory checker for shallow networks.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def activation_args(p):
        p.add_argument("activation", help="built-in name (see `ibcheck list`) or a formula in x, "
                                          "e.g. 'x/(1+abs(x))' or 'leaky_relu(a=0.2)'")
        p.add_argument("--param", action="append", metavar="NAME=VALUE",
                       help="parameter value (repeatable), e.g. --param a=0.2")

    p = sub.add_parser("derive", help="derive the theory's predictions for an activation, step by step")
    activation_args(p)
    p.add_argument("--dim", type=int, default=1, help="input dimension d (default 1)")
    p.add_argument("--format", choices=FORMATS, default="text")
    p.set_defaults(func=cmd_derive)

    p = sub.add_parser("check", help="run the checks that apply to an activation")
    activation_args(p)
    p.add_argument("--only", help="comma-separated check ids")
    p.add_argument("--profile", choices=PROFILES, default="quick")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="check-specific option (repeatable), e.g. --option architecture=4-8-8-1")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("list", help="list built-in activations and checks")
    p.set_defaults(func=cmd_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
