"""The backfill's runner options: Dataflow's documented flags parse into Beam's options; nothing runs."""

from __future__ import annotations

from pathlib import Path

from apache_beam.options.pipeline_options import DirectOptions, GoogleCloudOptions, StandardOptions, WorkerOptions
from typer.testing import CliRunner

from pipelines.beam_backfill import DataflowOptions, pipeline_options
from runners.cli import app

MODEL = "scene-classification"


def test_dataflow_options_are_built_from_the_documented_flags() -> None:
    options = pipeline_options("DataflowRunner", ["--experiments=use_runner_v2"], dataflow=DataflowOptions(
        project="acme-ml", region="us-central1", temp_location="gs://acme-tmp/backfill",
        worker_image="us-docker.pkg.dev/acme-ml/imgrec/imgrec-gpu:0.1.0", gpu="nvidia-l4",
        machine_type="g2-standard-4", max_workers=20,
    ))
    cloud, worker = options.view_as(GoogleCloudOptions), options.view_as(WorkerOptions)
    assert options.view_as(StandardOptions).runner == "DataflowRunner"
    assert (cloud.project, cloud.region, cloud.temp_location) == ("acme-ml", "us-central1", "gs://acme-tmp/backfill")
    assert cloud.dataflow_service_options == ["worker_accelerator=type:nvidia-l4;count:1;install-nvidia-driver"]
    assert worker.sdk_container_image == "us-docker.pkg.dev/acme-ml/imgrec/imgrec-gpu:0.1.0"
    assert (worker.machine_type, worker.max_num_workers) == ("g2-standard-4", 20)
    assert "use_runner_v2" in options.get_all_options()["experiments"]
    two = pipeline_options("DataflowRunner", dataflow=DataflowOptions("p", "r", "gs://t", gpu="nvidia-tesla-t4:2"))
    assert two.view_as(GoogleCloudOptions).dataflow_service_options == [
        "worker_accelerator=type:nvidia-tesla-t4;count:2;install-nvidia-driver"]
    local = pipeline_options("DirectRunner", ["--direct_num_workers=2"])
    assert local.view_as(DirectOptions).direct_num_workers == 2


def test_dataflow_without_a_project_is_refused_before_anything_runs(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.txt"
    manifest.write_text("file:///nowhere.jpg\n")
    done = CliRunner().invoke(app, ["backfill", str(manifest), "--model", MODEL, "--runner", "DataflowRunner"])
    assert done.exit_code != 0 and "--project" in done.output
