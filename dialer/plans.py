"""Revisit plans: which follow-up calls each treatment type gets, and when.

The plans live in an editable YAML file (shipped: ``dialer/plans.yaml``).  It is
validated as a whole when loaded; every problem is reported as ``file:line: what``
so an operator can fix the file without reading code.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

SHIPPED = Path(__file__).with_name("plans.yaml")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class PlanError(ValueError):
    """All problems of one plans file, one per line."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Step:
    day: int
    name: str
    window_days: float = 3.0


@dataclass(frozen=True)
class Plan:
    treatment_type: str
    label: str
    steps: tuple[Step, ...]


def load_plans(path: str | Path | None = None) -> dict[str, Plan]:
    path = Path(path) if path else SHIPPED
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError([f"{path}: cannot read: {exc.strerror}"]) from None
    return parse_plans(text, str(path))


def parse_plans(text: str, where: str = "<plans>") -> dict[str, Plan]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise PlanError([f"{where}{line}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    problems: list[str] = []

    def err(node, msg):
        problems.append(f"{where}:{node.start_mark.line + 1}: {msg}")

    if root is None or not isinstance(root, yaml.MappingNode):
        raise PlanError([f"{where}:1: the file must map treatment types to plans"])
    plans: dict[str, Plan] = {}
    for knode, vnode in root.value:
        ttype = knode.value
        if not _NAME.match(str(ttype)):
            err(knode, f"treatment type {ttype!r}: use lower-case letters, digits and _")
            continue
        if ttype in plans:
            err(knode, f"treatment type {ttype!r} is defined twice")
            continue
        if not isinstance(vnode, yaml.MappingNode):
            err(vnode, f"{ttype}: must be a mapping with 'steps'")
            continue
        fields = {k.value: (k, v) for k, v in vnode.value}
        for k in fields:
            if k not in ("label", "steps"):
                err(fields[k][0], f"{ttype}: unknown key {k!r} (known: label, steps)")
        label = fields["label"][1].value if "label" in fields else ttype
        if "steps" not in fields:
            err(vnode, f"{ttype}: 'steps' is missing")
            continue
        snode = fields["steps"][1]
        if not isinstance(snode, yaml.SequenceNode) or not snode.value:
            err(snode, f"{ttype}.steps: must be a non-empty list")
            continue
        steps: list[Step] = []
        for item in snode.value:
            step = _step(ttype, item, err)
            if step is None:
                continue
            if any(s.name == step.name for s in steps):
                err(item, f"{ttype}: step name {step.name!r} used twice")
                continue
            steps.append(step)
        plans[ttype] = Plan(ttype, str(label), tuple(sorted(steps, key=lambda s: s.day)))
    if problems:
        raise PlanError(problems)
    if not plans:
        raise PlanError([f"{where}:1: no plans defined"])
    return plans


def _step(ttype, node, err) -> Step | None:
    if not isinstance(node, yaml.MappingNode):
        err(node, f"{ttype}: a step must be a mapping like {{day: 7}}")
        return None
    values = {}
    ok = True
    for k, v in node.value:
        key = k.value
        if key not in ("day", "name", "window_days"):
            err(k, f"{ttype}: unknown step key {key!r} (known: day, name, window_days)")
            ok = False
            continue
        values[key] = (k, v)
    if "day" not in values:
        err(node, f"{ttype}: step needs 'day'")
        return None
    dnode = values["day"][1]
    try:
        day = int(dnode.value)
        if day < 0 or str(day) != dnode.value.strip():
            raise ValueError
    except (ValueError, TypeError, AttributeError):
        err(dnode, f"{ttype}: day must be a whole number >= 0, got {getattr(dnode, 'value', '?')!r}")
        return None
    name = f"day{day}"
    if "name" in values:
        name = str(values["name"][1].value)
        if not _NAME.match(name):
            err(values["name"][1], f"{ttype}: step name {name!r}: use lower-case letters, digits and _")
            ok = False
    window = 3.0
    if "window_days" in values:
        wnode = values["window_days"][1]
        try:
            window = float(wnode.value)
            if window <= 0:
                raise ValueError
        except (ValueError, TypeError, AttributeError):
            err(wnode, f"{ttype}: window_days must be a number > 0")
            ok = False
    return Step(day, name, window) if ok else None
