"""`imgrec deploy` commands: install the chart's validation tools, lint and validate both sizes offline."""

from __future__ import annotations

import subprocess
from typing import Annotated

import typer
from rich.console import Console

from runners.stack.settings import StackSettings

deploy_app = typer.Typer(help="The Kubernetes Helm chart: its tools and offline checks.", no_args_is_help=True)
console = Console()


@deploy_app.command()
def tools() -> None:
    """Install helm and Beam's Prism runner (Go module proxy) and the CRD schema packages (npm), cached."""
    from runners.deploy.tools import ToolError, install_tools

    try:
        install_tools(StackSettings().cache_dir, say=console.print)
    except (subprocess.CalledProcessError, OSError, ToolError) as exc:
        console.print(f"[red]deploy tools failed:[/red] {exc}")
        raise typer.Exit(1) from exc


@deploy_app.command()
def check(
    size: Annotated[list[str] | None, typer.Option("--size", help="small or large (repeatable; default both).")] = None,
) -> None:
    """helm lint + helm template, then every manifest against its schema (built-in kinds and CRDs)."""
    from runners.deploy.chart import SIZES, ChartError, lint, render, validate
    from runners.deploy.tools import helm_path

    helm = helm_path(StackSettings().cache_dir)
    failed = False
    for name in size or SIZES:
        try:
            lint(helm, name)
            manifests = render(helm, name)
            findings = validate(manifests)
        except ChartError as exc:
            console.print(f"[red]{name}:[/red] {exc}")
            failed = True
            continue
        for finding in findings:
            console.print(f"[red]{name}:[/red] {finding}")
        failed = failed or bool(findings)
        kinds = sorted({m["kind"] for m in manifests})
        console.print(f"{name}: {len(manifests)} manifests ({', '.join(kinds)}), {len(findings)} findings")
    if failed:
        raise typer.Exit(1)
