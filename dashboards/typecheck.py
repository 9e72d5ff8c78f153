"""Check (a): type-check every dashboard against Grafana's ``@grafana/schema`` types.

For each dashboard a TypeScript file inlines the JSON as typed constants and
``tsc --noEmit`` compiles them: the whole dashboard as ``Dashboard``, each
panel's ``options`` and ``fieldConfig.defaults.custom`` as that
visualization's ``Options``/``FieldConfig`` from ``@grafana/schema``, and each
query as the ClickHouse plugin's SQL query model. Inlining matters: a
``.json`` import widens every string literal and reports false errors.

The npm packages live in ``dashboards/typecheck/`` (``package.json`` and
``package-lock.json`` are committed); :func:`ensure_installed` runs ``npm ci``
there once when ``node_modules`` is missing.

Examples
--------
>>> source = typescript_source({"uid": "x", "schemaVersion": 41, "panels": []})
>>> "const dashboard: Json<Dashboard> = " in source
True
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.errors import TypecheckError

__all__ = ["TYPECHECK_DIR", "TscResult", "TypecheckError", "ensure_installed", "run_tsc", "typescript_source",
           "write_sources"]

TYPECHECK_DIR = Path(__file__).resolve().parent / "typecheck"
_PANELCFG = "@grafana/schema/dist/esm/raw/composable/{folder}/panelcfg/x/{name}PanelCfg_types.gen"
# Visualization -> (module folder, type prefix) in @grafana/schema.
_PANEL_TYPES = {"timeseries": ("timeseries", "TimeSeries"), "table": ("table", "Table"),
                "stat": ("stat", "Stat"), "barchart": ("barchart", "BarChart")}
_NO_FIELD_CONFIG = {"stat"}
_PLACEHOLDER = "\u0000annotations\u0000"  # stat's panelcfg declares Options only


@dataclass(frozen=True)
class TscResult:
    """What ``tsc --noEmit`` said."""

    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def _tsc() -> Path:
    return TYPECHECK_DIR / "node_modules" / "typescript" / "bin" / "tsc"


def ensure_installed(*, timeout_s: float = 600) -> Path:
    """Install the pinned npm packages once (``npm ci``); return the ``tsc`` script.

    Raises :class:`TypecheckError` when node or npm is missing: the check must
    fail loudly, never pass by being skipped.
    """
    if _tsc().is_file() and (TYPECHECK_DIR / "node_modules" / "@grafana" / "schema").is_dir():
        return _tsc()
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise TypecheckError("the dashboard type check needs Node.js and npm on PATH (Node 20 or newer); "
                             "install them, then run `npm ci --prefix dashboards/typecheck`")
    result = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefix", str(TYPECHECK_DIR)],
                            capture_output=True, text=True, timeout=timeout_s, check=False)
    if result.returncode != 0 or not _tsc().is_file():
        raise TypecheckError(f"`npm ci` in {TYPECHECK_DIR} failed with exit code {result.returncode}:\n"
                             f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return _tsc()


def _literal(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def typescript_source(board: Mapping[str, Any], helper: str = "../grafana-json") -> str:
    """A TypeScript module inlining ``board`` (a dashboard's JSON model) as typed constants.

    ``helper`` is the import path of ``grafana-json.ts`` from where the module is written.
    """
    imports = ["import type { AnnotationQuery, Dashboard } from '@grafana/schema';",
               f"import type {{ ClickHouseQuery, Json }} from '{helper}';"]
    # The schema types an annotation's target as the generic DataQuery, with a
    # type parameter for the datasource's own query: typed on their own as
    # AnnotationQuery<ClickHouseQuery>, the annotations then go into the dashboard.
    annotations = board.get("annotations", {}).get("list", [])
    inlined = {**board, "annotations": {**board.get("annotations", {}), "list": _PLACEHOLDER}}
    checks = [f"export const annotations: Array<Json<AnnotationQuery<ClickHouseQuery>>> = {_literal(annotations)};",
              "export const dashboard: Json<Dashboard> = "
              + _literal(inlined).replace(json.dumps(_PLACEHOLDER), "annotations") + ";"]
    used: set[str] = set()
    for index, panel in enumerate(board.get("panels", [])):
        kind = panel.get("type")
        where = f"panel{index + 1}"
        checks.append(f"export const {where}Targets: Array<Json<ClickHouseQuery>> = "
                      f"{_literal(panel.get('targets', []))};")
        if kind not in _PANEL_TYPES:
            continue
        folder, name = _PANEL_TYPES[kind]
        used.add(kind)
        checks.append(f"export const {where}Options: Json<{name}Options> = {_literal(panel.get('options', {}))};")
        custom = panel.get("fieldConfig", {}).get("defaults", {}).get("custom")
        if custom is not None and kind not in _NO_FIELD_CONFIG:
            checks.append(f"export const {where}Custom: Json<{name}FieldConfig> = {_literal(custom)};")
    for kind in sorted(used):
        folder, name = _PANEL_TYPES[kind]
        names = f"Options as {name}Options"
        if kind not in _NO_FIELD_CONFIG:
            names += f", FieldConfig as {name}FieldConfig"
        imports.append(f"import type {{ {names} }} from '{_PANELCFG.format(folder=folder, name=name)}';")
    header = f"// Generated from dashboard {board.get('uid')!r} by dashboards/typecheck.py; do not edit.\n"
    return header + "\n".join(imports) + "\n\n" + "\n\n".join(checks) + "\n"


def write_sources(boards: Sequence[Mapping[str, Any]], folder: Path) -> list[Path]:
    """Write one ``.ts`` file per dashboard into ``folder`` (under :data:`TYPECHECK_DIR`)."""
    folder.mkdir(parents=True, exist_ok=True)
    helper = Path(os.path.relpath(TYPECHECK_DIR / "grafana-json", folder)).as_posix()
    paths = []
    for board in boards:
        path = folder / f"{board['uid']}.ts"
        path.write_text(typescript_source(board, helper), encoding="utf-8")
        paths.append(path)
    return paths


def run_tsc(files: Sequence[Path], *, timeout_s: float = 300) -> TscResult:
    """``tsc --noEmit --strict`` over ``files``; they must lie under :data:`TYPECHECK_DIR`."""
    tsc = ensure_installed()
    node = shutil.which("node")
    if node is None:
        raise TypecheckError("node is not on PATH; the dashboard type check needs Node.js 20 or newer")
    command = [node, str(tsc), "--noEmit", "--strict", "--skipLibCheck", "--pretty", "false",
               "--target", "es2022", "--module", "esnext", "--moduleResolution", "bundler",
               *(str(f) for f in files)]
    result = subprocess.run(command, cwd=TYPECHECK_DIR, capture_output=True, text=True,
                            timeout=timeout_s, check=False)
    return TscResult(result.returncode, (result.stdout + result.stderr).strip())
