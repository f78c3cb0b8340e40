"""Readers for the deployment files: where they are, a small Dockerfile parser, Compose defaults."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "docker" / "Dockerfile"
COMPOSE_FILE = REPO / "docker-compose.yml"
K8S_FILE = REPO / "docker" / "k8s-sidecar.yaml"
CI_FILE = REPO / ".github" / "workflows" / "ci.yml"
DOCKERIGNORE = REPO / ".dockerignore"
VENV_BIN = REPO / ".venv" / "bin"


@dataclass
class Stage:
    """One FROM ... section of a Dockerfile, with its instructions in order."""

    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [rest for kw, rest in self.instructions if kw == keyword]

    def env(self, inherited: dict[str, str] | None = None) -> dict[str, str]:
        """The stage's ENV, with `$VAR` / `${VAR}` expanded as Docker does at build time."""
        env = dict(inherited or {})
        for rest in self.args("ENV"):
            for word in shlex.split(rest):
                key, _, value = word.partition("=")
                env[key] = expand(value, env)
        return env

    def exec_form(self, keyword: str) -> list[str]:
        """The last CMD/ENTRYPOINT, which must be in exec (JSON) form."""
        value = json.loads(self.args(keyword)[-1])
        assert isinstance(value, list)
        return [str(item) for item in value]


def expand(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m.group(1) or m.group(2), ""), value)


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages of a Dockerfile: continuation lines joined, comments and blank lines dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # comment lines inside a continuation are dropped too, as Docker does
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        else:
            stages[-1].instructions.append((keyword, rest))
    return stages


def compose_defaults(value: str) -> str:
    """Compose interpolation with nothing set: `${VAR:-default}` becomes its default."""
    value = re.sub(r"\$\{\w+(?::?-([^}]*))?\}", lambda m: m.group(1) or "", value)
    return value.replace("$$", "$")


def validate_with_builtin_schema(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    """Run check-jsonschema (a dev dependency) against one of its vendored schemas."""
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)]
    return subprocess.run(command, capture_output=True, text=True, check=False)
