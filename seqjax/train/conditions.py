"""``train.stop_when``: a condition on the validation metrics that ends a run once it holds.

A condition is one comparison, ``METRIC OP RHS``, where ``OP`` is ``<``, ``<=``, ``>`` or ``>=``
and ``RHS`` a number, another metric, or a metric times a number::

    mse<0.01            solved>=0.99            loss<baseline*0.1

(``baseline`` is the memoryless score the synthetic problems report beside their metrics). The
loop checks it after every validation evaluation; the first step at which it holds is the run's
time to solve (Le et al. 2015, Fig. 2; Arjovsky et al. 2016 plot the same against examples seen).
"""

from __future__ import annotations

import math
import operator
import re
from typing import NamedTuple, Optional

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_NAME = r"[A-Za-z_][\w/]*"
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_PATTERN = re.compile(
    rf"^\s*({_NAME})\s*(<=|>=|<|>)\s*(?:({_NUMBER})|({_NAME})(?:\s*\*\s*({_NUMBER}))?)\s*$"
)


class Condition(NamedTuple):
    metric: str  # the metric compared
    op: str  # one of <, <=, >, >=
    value: float  # the number, or the factor of ``other``
    other: Optional[str]  # the metric on the right, or None

    def holds(self, metrics: dict) -> bool:
        """Whether the condition holds for ``metrics`` (a missing or non-finite value: no)."""
        left = metrics.get(self.metric)
        right = self.value if self.other is None else metrics.get(self.other)
        if left is None or right is None:
            return False
        right = right * self.value if self.other is not None else right
        if not (math.isfinite(left) and math.isfinite(right)):
            return False
        return _OPS[self.op](left, right)

    def missing(self, metrics: dict) -> list[str]:
        """The metrics the condition names that ``metrics`` lacks."""
        return [m for m in (self.metric, self.other) if m is not None and m not in metrics]


def parse(text: str) -> Optional[Condition]:
    """The condition ``text`` (``None`` for ``""``: off); ``ValueError`` naming the syntax.

    Example:
      >>> c = parse("loss<baseline*0.1")
      >>> c.holds({"loss": 0.01, "baseline": 0.17}), c.holds({"loss": 0.02, "baseline": 0.17})
      (True, False)
      >>> parse("solved >= 0.99").holds({"solved": 1.0})
      True
    """
    if not text.strip():
        return None
    m = _PATTERN.match(text)
    if m is None:
        raise ValueError(
            "must be METRIC OP VALUE with OP one of <, <=, >, >= and VALUE a number, a metric or "
            "a metric times a number (e.g. mse<0.01, solved>=0.99, loss<baseline*0.1)"
        )
    metric, op, number, other, factor = m.groups()
    if number is not None:
        return Condition(metric, op, float(number), None)
    return Condition(metric, op, float(factor) if factor else 1.0, other)


def check(text: str) -> Optional[str]:
    """The schema check of ``train.stop_when``: what is wrong with ``text``, or ``None``."""
    try:
        parse(text)
    except ValueError as e:
        return str(e)
    return None


__all__ = ["Condition", "check", "parse"]
