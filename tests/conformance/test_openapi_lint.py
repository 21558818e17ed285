"""The committed openapi.yaml is the app's document, and Spectral (spectral:oas plus the
CAMARA rules of .spectral.yaml) finds nothing in it. The ruleset itself is checked too:
each CAMARA rule must fire on a document that breaks it."""

from __future__ import annotations

import copy
import importlib.util
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.skips import skip_or_fail_in_ci
import yaml

ROOT = Path(__file__).resolve().parents[2]
SPECTRAL = ROOT / "tools" / "spectral" / "node_modules" / ".bin" / "spectral"
API = "/site-to-cloud-vpn/v0.1"


def _exporter() -> Any:
    spec = importlib.util.spec_from_file_location("export_openapi", ROOT / "scripts" / "export_openapi.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def app_schema() -> dict[str, Any]:
    return _exporter().build_schema()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def spectral() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        skip_or_fail_in_ci("node/npm not installed (CI has them)")
    if not SPECTRAL.exists():
        subprocess.run(["bash", str(ROOT / "scripts" / "install-node-tools.sh")], check=True, timeout=300)
    return SPECTRAL


def lint(spectral: Path, document: Path) -> list[dict[str, Any]]:
    run = subprocess.run(
        [str(spectral), "lint", str(document), "--ruleset", str(ROOT / ".spectral.yaml"), "--format", "json", "--quiet",
         "--fail-severity", "hint"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert run.returncode in (0, 1), run.stderr  # 2 = the ruleset or the document could not be read
    return json.loads(run.stdout or "[]")  # type: ignore[no-any-return]


def test_committed_openapi_yaml_is_the_apps_document(app_schema: dict[str, Any]) -> None:
    committed = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    assert committed == app_schema, "openapi.yaml is stale: run .venv/bin/python scripts/export_openapi.py"
    assert (ROOT / "openapi.yaml").read_text() == _exporter().render(app_schema)


def test_openapi_yaml_has_no_spectral_findings(spectral: Path) -> None:
    findings = lint(spectral, ROOT / "openapi.yaml")
    report = "\n".join(f"{f['severity']} {f['code']} {'/'.join(map(str, f['path']))}: {f['message']}" for f in findings)
    assert findings == [], report


def _broken(schema: dict[str, Any]) -> dict[str, Any]:
    """One violation per CAMARA rule of .spectral.yaml."""
    bad = copy.deepcopy(schema)
    create = bad["paths"][f"{API}/sessions"]["post"]
    listing = bad["paths"][f"{API}/sessions"]["get"]
    create.pop("summary")
    create["operationId"] = "Create_session"
    create["security"] = [{"openId": []}]
    create["parameters"] = [p for p in create.get("parameters", []) if "$ref" not in p]
    create["parameters"].append({"name": "foo", "in": "query", "schema": {"type": "string", "maxLength": 3}})
    del create["responses"]["201"]["headers"]["x-correlator"]
    create["responses"]["404"] = {
        "description": "plain error",
        "headers": {"x-correlator": {"$ref": "#/components/headers/x-correlator"}},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorInfo"}}},
    }
    del create["responses"]["401"]
    listing["requestBody"] = {"content": {"application/json": {"schema": {"type": "object"}}}}
    listing["parameters"].append({"name": "accessToken", "in": "query", "description": "x", "schema": {"type": "string", "maxLength": 9}})
    bad["paths"][f"{API}/Sessions_All"] = {}
    bad["components"]["schemas"]["SessionCreate"]["additionalProperties"] = True
    bad["components"]["schemas"]["ErrorInfo"]["required"] = ["status", "code"]
    bad["servers"] = [{"url": "http://127.0.0.1:8080"}]
    del bad["info"]["x-camara-commonalities"]
    bad["components"]["schemas"]["bad_name"] = {
        "type": "object",
        "properties": {
            "snake_case": {"type": "string", "description": "x", "maxLength": 3},
            "noDescription": {"type": "string", "maxLength": 3},
            "unbounded": {"type": "string", "description": "x"},
            "when": {"type": "string", "format": "date-time", "description": "x", "enum": ["x"]},
            "list": {"type": "array", "items": {"type": "string", "maxLength": 2}, "description": "x"},
            "count": {"type": "integer", "description": "x"},
            "ratio": {"type": "number", "description": "x"},
        },
    }
    return bad


def test_every_camara_rule_fires_on_a_document_that_breaks_it(spectral: Path, app_schema: dict[str, Any], tmp_path: Path) -> None:
    ruleset = yaml.safe_load((ROOT / ".spectral.yaml").read_text())
    camara_rules = {name for name in ruleset["rules"] if name.startswith("camara-")}
    assert len(camara_rules) >= 20
    document = tmp_path / "broken.json"
    document.write_text(json.dumps(_broken(app_schema)))
    fired = {f["code"] for f in lint(spectral, document) if f["severity"] == 0}  # 0 = error
    assert camara_rules - fired == set()
