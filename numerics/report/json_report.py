"""The JSON report: every number, tolerance, seed, parameter, package version and run time.

Its layout is ``numerics/schemas/report.schema.json`` (version ``schema_version``)."""

from __future__ import annotations

import json

from ..schemas import SCHEMA_VERSION
from .model import Report

SCHEMA = "ibcheck-report/1"


def _without_mathml(value):
    if isinstance(value, dict):
        return {k: _without_mathml(v) for k, v in value.items() if k != "mathml"}
    if isinstance(value, list):
        return [_without_mathml(v) for v in value]
    return value


def report_dict(report: Report) -> dict:
    """The report as JSON-ready data (check results in full, plots as their data)."""
    return {
        "schema_version": SCHEMA_VERSION, "schema": SCHEMA, "title": report.title, "command": report.command, "profile": report.profile,
        "seed": report.seed, "options": report.options, "started": report.started,
        "runtime_s": report.runtime_s, "executor": report.executor, "cache": report.cache,
        "environment": report.environment, "counts": report.counts(), "checks": report.checks,
        "activations": [{
            "label": a.label, "spec": a.spec, "expression": a.expression, "description": a.description,
            "derivation": _without_mathml(a.derivation),
            "results": [dict(r.to_dict(), cached=r.check in a.cached) for r in a.results],
        } for a in report.activations],
    }


def render_json(report: Report) -> str:
    return json.dumps(report_dict(report), indent=1, allow_nan=False) + "\n"
