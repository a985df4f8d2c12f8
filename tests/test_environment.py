"""environment.yml (conda) and pyproject.toml (pip) declare the same dependencies."""

import re
import tomllib

import yaml
from conftest import ROOT

# conda-forge names that differ from the PyPI names
CONDA_TO_PYPI = {"python-duckdb": "duckdb", "ibis-framework-core": "ibis-framework"}


def _name_and_spec(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*?)\s*(#.*)?$", req)
    return m.group(1).lower(), m.group(3).replace(" ", "")


def test_conda_and_pip_dependencies_agree():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip = dict(_name_and_spec(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {}
    for dep in env["dependencies"]:
        if isinstance(dep, str) and not dep.startswith(("python>", "python=", "pip")):
            name, spec = _name_and_spec(dep)
            conda[CONDA_TO_PYPI.get(name, name)] = spec
    assert conda == pip
