"""Promotion gates: per-model rules a candidate's evaluation must pass against the active version's.

Quality metrics are shares in [0, 1]; a drop is measured in points (hundredths). Latency is the median per-image
time of the candidate over the active version's, measured side by side in the same run.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field


class GateRules(BaseModel):
    """What a candidate must show to be promoted (stored per model; these defaults otherwise)."""

    model_config = ConfigDict(extra="forbid")

    max_drop_points: float = Field(2.0, ge=0, le=100, description="No quality metric below active by more than this.")
    max_latency_ratio: float = Field(1.5, gt=0, description="Median latency per image at most this x active's.")
    min_agreement: float | None = Field(
        None, ge=0, le=1, description="Least agreement with the active version's answers (none: not gated)."
    )
    min_metrics: dict[str, float] = Field(
        default_factory=dict, description='Absolute floors per quality metric, e.g. {"top1": 0.6}.'
    )
    min_score_correlation: float | None = Field(
        0.5, ge=-1, le=1, description="Least correlation of a classifier's scores with the active version's, image "
        "to image (catches a collapsed model whose best label still agrees); none: not gated.",
    )


@dataclass(frozen=True)
class GateCheck:
    """One rule applied: the value seen, the limit, and whether it held."""

    rule: str
    value: float
    limit: float
    passed: bool

    def to_dict(self) -> dict[str, object]:
        return {"rule": self.rule, "value": round(self.value, 4), "limit": round(self.limit, 4), "passed": self.passed}


@dataclass(frozen=True)
class GateVerdict:
    checks: list[GateCheck]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failures(self) -> list[GateCheck]:
        return [check for check in self.checks if not check.passed]


def judge(
    rules: GateRules,
    quality: dict[str, float],
    baseline_quality: dict[str, float] | None,
    latency_ratio: float | None,
    agreement: float | None,
    score_correlation: float | None = None,
) -> GateVerdict:
    """Apply the rules; without an active version only the absolute floors apply."""
    checks = [
        GateCheck(f"{name} >= {floor}", quality.get(name, 0.0), floor, quality.get(name, 0.0) >= floor)
        for name, floor in sorted(rules.min_metrics.items())
    ]
    if baseline_quality is not None:
        for name, base in sorted(baseline_quality.items()):
            limit = base - rules.max_drop_points / 100
            value = quality.get(name, 0.0)
            # A tiny tolerance: equal metrics computed from float sums must not fail on rounding.
            checks.append(
                GateCheck(f"{name} >= active - {rules.max_drop_points:g} points", value, limit, value >= limit - 1e-9)
            )
    if latency_ratio is not None:
        checks.append(
            GateCheck(
                "latency <= active x ratio",
                latency_ratio,
                rules.max_latency_ratio,
                latency_ratio <= rules.max_latency_ratio,
            )
        )
    if rules.min_agreement is not None and agreement is not None:
        checks.append(
            GateCheck("agreement with active", agreement, rules.min_agreement, agreement >= rules.min_agreement)
        )
    floor = rules.min_score_correlation
    if floor is not None and score_correlation is not None:
        checks.append(
            GateCheck("scores move with active's", score_correlation, floor, score_correlation >= floor)
        )
    return GateVerdict(checks)
