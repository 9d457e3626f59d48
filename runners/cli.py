"""The `imgrec` command line: one Typer app, each command group in the module that owns it."""

from __future__ import annotations

import typer

from runners.backfill_cli import EXTRA_ARGS, backfill_command
from runners.batch_cli import batch_app
from runners.bootstrap_cli import bootstrap_app
from runners.deploy.cli import deploy_app
from runners.job_cli import job_app
from runners.keys_cli import keys_app
from runners.models_cli import models_app
from runners.observability.cli import exporter
from runners.plan_cli import plan_command
from runners.serve_cli import serve
from runners.stack.cli import stack_app

app = typer.Typer(help="Image recognition service.", no_args_is_help=True, add_completion=False)
app.command("serve")(serve)
app.command("plan")(plan_command)
app.command("backfill", context_settings=EXTRA_ARGS)(backfill_command)
app.command("exporter")(exporter)
app.add_typer(stack_app, name="stack")
app.add_typer(models_app, name="models")
app.add_typer(job_app, name="job")
app.add_typer(batch_app, name="batch")
app.add_typer(keys_app, name="keys")
app.add_typer(deploy_app, name="deploy")
app.add_typer(bootstrap_app, name="bootstrap")

if __name__ == "__main__":
    app()
