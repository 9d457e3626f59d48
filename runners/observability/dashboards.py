"""Grafana dashboards as code: `panels.py` built with grafana-foundation-sdk into importable JSON under dashboards/.

`python -m runners.observability.dashboards` rewrites the committed files; a test checks they equal this output.
"""

from __future__ import annotations

import json
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.builders.common import GraphThresholdsStyleConfig
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import GraphTresholdsStyleMode
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    GridPos,
    Threshold,
    ThresholdsMode,
    VariableOption,
)

from runners.observability.panels import DASHBOARDS, Dashboard, Panel
from transforms.settings import REPO_ROOT

OUT_DIR = REPO_ROOT / "dashboards"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
WIDTH, HEIGHT, COLUMNS = 12, 8, 2


def _thresholds(panel: Panel) -> gd.ThresholdsConfig:
    ok, bad = Threshold(value=None, color="green"), Threshold(value=panel.target, color="red")
    if panel.bad_below_target:
        ok, bad = Threshold(value=None, color="red"), Threshold(value=panel.target, color="green")
    steps = [ok] if panel.target is None else [ok, bad]
    return gd.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps)


def _panel(panel: Panel, index: int) -> timeseries.Panel | stat.Panel:
    builder = stat.Panel() if panel.kind == "stat" else timeseries.Panel()
    builder = (
        builder.title(panel.title)
        .description(panel.description)
        .unit(panel.unit)
        .datasource(DATASOURCE)
        .thresholds(_thresholds(panel))
        .grid_pos(GridPos(h=HEIGHT, w=WIDTH, x=(index % COLUMNS) * WIDTH, y=(index // COLUMNS) * HEIGHT))
    )
    if panel.kind == "timeseries" and panel.target is not None:
        # The target drawn as a line across the graph.
        builder = builder.thresholds_style(GraphThresholdsStyleConfig().mode(GraphTresholdsStyleMode.LINE))
    for ref, query in zip("ABCDEFGH", panel.queries, strict=False):
        builder = builder.with_target(
            prometheus.Dataquery().expr(query.expr).legend_format(query.legend or "__auto").ref_id(ref)
            .datasource(DATASOURCE)
        )
    return builder


def build(spec: Dashboard) -> dict:
    """One dashboard as Grafana's JSON model, with a Prometheus data-source variable to pick on import."""
    builder = (
        gd.Dashboard(spec.title)
        .uid(spec.uid)
        .description(spec.description)
        .tags(["imgrec", "generated"])
        .refresh("30s")
        .time("now-1h", "now")
        .editable()
        .with_variable(
            gd.DatasourceVariable("datasource").label("Prometheus").type("prometheus")
            .current(VariableOption(selected=True, text="Prometheus", value="prometheus"))
        )
    )
    for index, panel in enumerate(spec.panels):
        builder = builder.with_panel(_panel(panel, index))
    return json.loads(JSONEncoder(sort_keys=True, indent=2).encode(builder.build()))


def render(spec: Dashboard) -> str:
    """The file's exact text."""
    return json.dumps(build(spec), indent=2, sort_keys=True) + "\n"


def write(out_dir: Path = OUT_DIR) -> list[Path]:
    """Write every dashboard; the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for spec in DASHBOARDS:
        path = out_dir / spec.file
        path.write_text(render(spec))
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write():
        print(written.relative_to(REPO_ROOT))
