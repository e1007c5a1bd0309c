"""deploy/Dockerfile's instructions (it is built for real by scripts/build-images in the Docker tests)."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "deploy" / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, _, rest = stripped.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def stages(parsed: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, args in parsed:
        if keyword == "FROM":
            result.append([])
        if result:  # global ARGs before the first FROM belong to no stage
            result[-1].append((keyword, args))
    return result


PARSED = instructions(DOCKERFILE.read_text(encoding="utf-8"))
FINAL = stages(PARSED)[-1]


def test_every_stage_builds_on_one_base_python_3_11_slim_unless_told_otherwise() -> None:
    bases = [args.split()[0] for keyword, args in PARSED if keyword == "FROM"]
    assert bases and all(base == "${BASE}" for base in bases)
    assert ("ARG", "BASE=python:3.11-slim") in PARSED
    # scripts/build-images builds on its own Debian base instead (no registry needed)
    assert '--build-arg "BASE=$BASE"' in (REPO / "scripts" / "build-images").read_text()


def test_every_copied_file_exists_and_passes_the_context_filter() -> None:
    ignore = (REPO / "deploy" / "Dockerfile.dockerignore").read_text().splitlines()
    patterns = [p for p in ignore if p and not p.startswith("#")]

    def included(path: str) -> bool:
        keep = True
        for pattern in patterns:
            negate = pattern.startswith("!")
            bare = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, bare) or path.startswith(bare + "/") or bare == "**":
                keep = negate
        return keep

    copies = [args for keyword, args in PARSED if keyword == "COPY" and "--from=" not in args]
    assert copies
    for args in copies:
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        for source in words[:-1]:
            if "[" in source:  # a pattern: an optional file (build-ca.pem, provided by scripts/build-images)
                continue
            assert (REPO / source).exists(), f"COPY source {source} does not exist"
            assert included(source.rstrip("/")), f"COPY source {source} is excluded from the build context"


def test_installs_from_the_lock_file_and_the_package() -> None:
    runs = " ".join(args for keyword, args in PARSED if keyword == "RUN")
    assert re.search(r"-c requirements.lock\s+-r runtime-requirements.txt", runs)  # the runtime pins of the lock
    assert "--no-deps ." in runs


def test_runs_as_a_non_root_user_the_cluster_expects() -> None:
    users = [args for keyword, args in FINAL if keyword == "USER"]
    assert users, "the final stage sets a user"
    user = users[-1].split(":")[0]
    assert user not in ("0", "root")
    assert user == "10001"
    assert any(keyword == "RUN" and "useradd --uid 10001" in args for keyword, args in FINAL)


def test_entrypoint_is_the_lbcloud_command_in_exec_form() -> None:
    entrypoints = [args for keyword, args in FINAL if keyword == "ENTRYPOINT"]
    assert json.loads(entrypoints[-1]) == ["lbcloud"]


def test_the_sumo_contents_layout_matches_the_track_settings() -> None:
    from lbcloud.settings import load_settings

    track = load_settings().track("sumo-test")
    assert track.images is not None
    copies = " ".join(args for keyword, args in FINAL if keyword == "COPY")
    for path in track.images.contents_paths:
        assert f"{path}/routes/" in copies
    assert Path(track.routes_file).name in copies
