"""`rosetta env` and `rosetta setup` against a user-mode daemon with fake upstreams.

The env tests evaluate `rosetta env <client>` in a real bash and let the official SDKs (configured only from the
environment) make a call through the gateway. The setup tests run `rosetta setup` with a temporary HOME for each
client: merge into realistic existing files, idempotence, --dry-run, --undo, and that the key commands written
into Claude Code's and Codex's files really print the current token, also after a rotation.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Iterator

import pytest

from fake_google import FakeGoogle
from fakes import FakeUpstream
from harness import REPO_ROOT, Daemon, gateway_config, rosetta_binary

FIXTURES = REPO_ROOT / "Tests" / "ClientSetupTests" / "Fixtures"
GOOGLE_UPSTREAM_KEY = "upstream-google-key"
# Variables a developer's shell might carry that must not leak into the SDK calls.
SCRUBBED = ("OPENAI_", "ANTHROPIC_", "GEMINI_", "GOOGLE_", "NO_PROXY", "no_proxy")


@pytest.fixture(scope="module")
def fake_google() -> Iterator[FakeGoogle]:
    with FakeGoogle(api_key=GOOGLE_UPSTREAM_KEY) as fake:
        yield fake


@pytest.fixture(scope="module")
def daemon(fakes: dict[str, FakeUpstream], fake_google: FakeGoogle) -> Iterator[Daemon]:
    config = gateway_config(fakes["openai"], fakes["anthropic"])
    config["providers"]["fake-google"] = {"type": "google", "base_url": f"{fake_google.url}/v1beta",
                                         "api_key": GOOGLE_UPSTREAM_KEY}
    config["models"]["gemini-test"] = {"provider": "fake-google", "upstream_model": "fake-gemini"}
    gateway = Daemon(config)
    try:
        yield gateway.start()
    finally:
        gateway.cleanup()


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED)}
    env["HOME"] = str(home)
    return env


def rosetta(daemon: Daemon, home: Path, *args: str) -> subprocess.CompletedProcess:
    """`rosetta ARGS --socket SOCK` with HOME set to `home`."""
    return subprocess.run([str(rosetta_binary()), *args, "--socket", str(daemon.socket)], capture_output=True,
                          text=True, timeout=60, env=clean_env(home))


def eval_and_run(daemon: Daemon, home: Path, client: str, python: str) -> subprocess.CompletedProcess:
    """bash: eval "$(rosetta env CLIENT)"; python -c PYTHON — the SDK sees only the environment."""
    command = (f'eval "$({shlex.quote(str(rosetta_binary()))} env {client} --socket {shlex.quote(str(daemon.socket))})" '
               f'&& exec {shlex.quote(sys.executable)} -c {shlex.quote(python)}')
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60, env=clean_env(home))


# ---------------------------------------------------------------------------
# rosetta env
# ---------------------------------------------------------------------------


def test_env_prints_quoted_exports_a_shell_reads_back(daemon: Daemon, tmp_path: Path) -> None:
    result = rosetta(daemon, tmp_path, "env", "openai")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(line.startswith("export ") for line in lines), result.stdout
    shown = subprocess.run(["bash", "-c", result.stdout + 'printf "%s\\n%s" "$OPENAI_BASE_URL" "$OPENAI_API_KEY"'],
                           capture_output=True, text=True, env=clean_env(tmp_path))
    assert shown.stdout.splitlines() == [f"{daemon.tcp_url}/v1", daemon.token]


def test_env_base_urls_per_client(daemon: Daemon, tmp_path: Path) -> None:
    def exports(client: str) -> dict[str, str]:
        result = rosetta(daemon, tmp_path, "env", client)
        assert result.returncode == 0, result.stderr
        script = result.stdout + "env -0"
        dumped = subprocess.run(["env", "-i", "bash", "-c", script], capture_output=True).stdout.decode()
        return dict(item.split("=", 1) for item in dumped.split("\0") if "=" in item)

    assert exports("anthropic")["ANTHROPIC_BASE_URL"] == daemon.tcp_url
    claude = exports("claude")
    assert claude["ANTHROPIC_BASE_URL"] == daemon.tcp_url and claude["ANTHROPIC_AUTH_TOKEN"] == daemon.token
    assert claude["ANTHROPIC_MODEL"] == "claude-test"
    assert "127.0.0.1" in claude["NO_PROXY"].split(",")
    assert exports("codex")["OPENAI_BASE_URL"] == f"{daemon.tcp_url}/v1"
    aider = exports("aider")
    assert aider["OPENAI_API_BASE"] == f"{daemon.tcp_url}/v1" and aider["AIDER_MODEL"] == "openai/gpt-test"
    gemini = exports("gemini")
    assert gemini["GOOGLE_GEMINI_BASE_URL"] == daemon.tcp_url and gemini["GEMINI_MODEL"] == "gemini-test"
    assert exports("opencode")["ROSETTA_API_KEY"] == daemon.token


def test_env_unknown_client_names_the_known_ones(daemon: Daemon, tmp_path: Path) -> None:
    result = rosetta(daemon, tmp_path, "env", "emacs")
    assert result.returncode != 0
    assert "claude" in result.stderr and "hermes" in result.stderr


def test_env_without_a_daemon_prints_nothing_to_eval(tmp_path: Path) -> None:
    """In a shell rc file, `eval "$(rosetta env X)"` must stay harmless when the daemon is down."""
    result = subprocess.run([str(rosetta_binary()), "env", "openai", "--socket", str(tmp_path / "absent.sock")],
                            capture_output=True, text=True, timeout=30, env=clean_env(tmp_path))
    assert result.returncode == 1
    assert result.stdout == ""
    assert "not running" in result.stderr


def test_openai_sdk_from_env(daemon: Daemon, tmp_path: Path, fakes: dict[str, FakeUpstream]) -> None:
    python = ("import openai\n"
              "c = openai.OpenAI(max_retries=0)\n"
              "r = c.chat.completions.create(model='gpt-test', messages=[{'role': 'user', 'content': 'hi from env'}])\n"
              "print(r.choices[0].message.content)")
    result = eval_and_run(daemon, tmp_path, "openai", python)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "echo: hi from env"
    assert len(fakes["openai"].chat_exchanges()) == 1


def test_anthropic_sdk_from_env(daemon: Daemon, tmp_path: Path, fakes: dict[str, FakeUpstream]) -> None:
    python = ("import anthropic\n"
              "c = anthropic.Anthropic(max_retries=0)\n"
              "m = c.messages.create(model='claude-test', max_tokens=64, messages=[{'role': 'user', 'content': 'hi from env'}])\n"
              "print(m.content[0].text)")
    result = eval_and_run(daemon, tmp_path, "anthropic", python)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "echo: hi from env"
    assert len(fakes["anthropic"].chat_exchanges()) == 1


def test_google_genai_sdk_from_env(daemon: Daemon, tmp_path: Path, fake_google: FakeGoogle) -> None:
    python = ("from google import genai\n"
              "c = genai.Client()\n"
              "r = c.models.generate_content(model='gemini-test', contents='hi from env')\n"
              "print(r.text)")
    fake_google.clear()
    result = eval_and_run(daemon, tmp_path, "google-genai", python)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert len(fake_google.chat_exchanges()) == 1


# ---------------------------------------------------------------------------
# rosetta setup
# ---------------------------------------------------------------------------

CLIENT_FILES = {
    "claude": (".claude/settings.json", "claude-settings.json"),
    "codex": (".codex/config.toml", "codex-config.toml"),
    "opencode": (".config/opencode/opencode.json", "opencode.json"),
    "aider": (".aider.conf.yml", "aider.conf.yml"),
    "gemini": (".gemini/settings.json", "gemini-settings.json"),
    "hermes": (".hermes/config.yaml", "hermes-config.yaml"),
}


def simple_yaml(text: str) -> dict:
    """Top-level keys of a block-style YAML file, with one level of `key: scalar` children (enough for these files;
    the venv has no YAML parser, and rosetta itself checks its edits with Yams)."""
    result: dict = {}
    current = None
    for line in text.splitlines():
        stripped = line.split(" #")[0].rstrip()
        if not stripped or stripped.lstrip().startswith("#"):
            continue
        key, _, value = stripped.strip().partition(":")
        value = value.strip().strip('"')
        if not line.startswith(" "):
            result[key] = value if value else {}
            current = key
        elif isinstance(result.get(current), dict) and not stripped.strip().startswith("-"):
            result[current][key] = value
    return result


def parse(client: str, text: str) -> dict:
    if client == "codex":
        return tomllib.loads(text)
    if client in ("aider", "hermes"):
        return simple_yaml(text)
    return json.loads(text)


def points_at_gateway(client: str, config: dict, daemon: Daemon) -> bool:
    v1 = f"{daemon.tcp_url}/v1"
    return {
        "claude": lambda: config["env"]["ANTHROPIC_BASE_URL"] == daemon.tcp_url and shlex.split(config["apiKeyHelper"])[1] == "token",
        "codex": lambda: config["model_provider"] == "rosetta" and config["model_providers"]["rosetta"]["base_url"] == v1
                         and config["model_providers"]["rosetta"]["wire_api"] == "responses",
        "opencode": lambda: config["provider"]["rosetta"]["options"]["baseURL"] == v1
                            and config["provider"]["rosetta"]["options"]["apiKey"] == "{env:ROSETTA_API_KEY}",
        "aider": lambda: config["openai-api-base"] == v1 and config["model"] == "openai/gpt-test",
        "gemini": lambda: config["security"]["auth"]["selectedType"] == "gemini-api-key" and config["model"]["name"] == "gemini-test",
        "hermes": lambda: config["model"]["base_url"] == v1 and config["model"]["provider"] == "custom",
    }[client]()


@pytest.mark.parametrize("client", sorted(CLIENT_FILES))
def test_setup_merges_into_an_existing_file_and_undo_restores_it(daemon: Daemon, tmp_path: Path, client: str) -> None:
    relative, fixture = CLIENT_FILES[client]
    path = tmp_path / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    original = (FIXTURES / fixture).read_bytes()
    path.write_bytes(original)
    path.chmod(0o640)

    dry = rosetta(daemon, tmp_path, "setup", client, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith(f"--- {path}\n+++ {path}\n@@ "), dry.stdout
    assert path.read_bytes() == original, "--dry-run wrote the file"
    assert not Path(f"{path}.rosetta-backup").exists()

    first = rosetta(daemon, tmp_path, "setup", client)
    assert first.returncode == 0, first.stderr
    assert "rosetta-backup" in first.stdout
    merged = path.read_text()
    config = parse(client, merged)
    assert points_at_gateway(client, config, daemon), merged
    before = parse(client, original.decode())
    for key in before:  # every top-level setting of the user's survives
        assert key in config, f"{key} lost from {client}'s config"
    assert daemon.token not in merged, "the token was copied into the file"
    assert (path.stat().st_mode & 0o777) == 0o640
    assert Path(f"{path}.rosetta-backup").read_bytes() == original

    again = rosetta(daemon, tmp_path, "setup", client)
    assert again.returncode == 0 and "nothing changed" in again.stdout, again.stdout + again.stderr
    assert path.read_text() == merged
    assert "nothing would change" in rosetta(daemon, tmp_path, "setup", client, "--dry-run").stdout

    undo = rosetta(daemon, tmp_path, "setup", client, "--undo")
    assert undo.returncode == 0, undo.stderr
    assert path.read_bytes() == original
    assert not Path(f"{path}.rosetta-backup").exists()
    assert rosetta(daemon, tmp_path, "setup", client, "--undo").returncode != 0


@pytest.mark.parametrize("client", sorted(CLIENT_FILES))
def test_setup_creates_a_missing_file_and_undo_removes_it(daemon: Daemon, tmp_path: Path, client: str) -> None:
    path = tmp_path / CLIENT_FILES[client][0]
    dry = rosetta(daemon, tmp_path, "setup", client, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith(f"--- /dev/null\n+++ {path}\n@@ -0,0 ")
    assert not path.exists() and (path.parent == tmp_path or not path.parent.exists())

    result = rosetta(daemon, tmp_path, "setup", client)
    assert result.returncode == 0, result.stderr
    assert points_at_gateway(client, parse(client, path.read_text()), daemon)
    assert (path.stat().st_mode & 0o777) == 0o600
    if path.parent != tmp_path:
        assert (path.parent.stat().st_mode & 0o777) == 0o700

    assert rosetta(daemon, tmp_path, "setup", client, "--undo").returncode == 0
    assert not path.exists()


def test_setup_model_override_and_env_only_clients(daemon: Daemon, tmp_path: Path) -> None:
    result = rosetta(daemon, tmp_path, "setup", "hermes", "--model", "claude-textonly")
    assert result.returncode == 0, result.stderr
    assert simple_yaml((tmp_path / ".hermes/config.yaml").read_text())["model"]["default"] == "claude-textonly"
    env_only = rosetta(daemon, tmp_path, "setup", "openai")
    assert env_only.returncode != 0 and "rosetta env openai" in env_only.stderr


def test_setup_refuses_a_file_it_cannot_parse(daemon: Daemon, tmp_path: Path) -> None:
    path = tmp_path / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_text('{"model": "x",}\n')
    result = rosetta(daemon, tmp_path, "setup", "claude")
    assert result.returncode == 1
    assert "not plain JSON" in result.stderr
    assert path.read_text() == '{"model": "x",}\n'


def test_key_commands_written_by_setup_print_the_current_token_after_rotation(daemon: Daemon, tmp_path: Path) -> None:
    assert rosetta(daemon, tmp_path, "setup", "claude").returncode == 0
    assert rosetta(daemon, tmp_path, "setup", "codex").returncode == 0
    helper = json.loads((tmp_path / ".claude/settings.json").read_text())["apiKeyHelper"]
    auth = tomllib.loads((tmp_path / ".codex/config.toml").read_text())["model_providers"]["rosetta"]["auth"]

    def via_claude() -> str:
        return subprocess.run(["sh", "-c", helper], capture_output=True, text=True, env=clean_env(tmp_path)).stdout.strip()

    def via_codex() -> str:
        return subprocess.run([auth["command"], *auth["args"]], capture_output=True, text=True,
                              env=clean_env(tmp_path)).stdout.strip()

    old = daemon.token
    assert via_claude() == old and via_codex() == old
    rotated = rosetta(daemon, tmp_path, "token", "--rotate")
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.strip()
    assert new != old
    assert via_claude() == new and via_codex() == new
    # The files did not change: rotation needs no re-run.
    assert "nothing changed" in rosetta(daemon, tmp_path, "setup", "claude").stdout


# ---------------------------------------------------------------------------
# rosetta doctor: the client files
# ---------------------------------------------------------------------------


def test_doctor_checks_each_set_up_client_file_and_names_the_fix(daemon: Daemon, tmp_path: Path) -> None:
    for client in ("claude", "codex"):
        assert rosetta(daemon, tmp_path, "setup", client).returncode == 0
    healthy = rosetta(daemon, tmp_path, "doctor", "--ascii")
    lines = healthy.stdout.splitlines()
    claude = next(line for line in lines if "Claude Code config" in line)
    assert claude.lstrip().startswith("ok") and ".claude/settings.json points at this gateway" in claude, healthy.stdout
    assert any("Codex" in line and "points at this gateway" in line for line in lines), healthy.stdout
    assert not any("OpenCode" in line for line in lines), healthy.stdout  # never set up: not a problem

    # The port moved (e.g. a file copied from another machine): doctor fails and names the command that fixes it.
    settings = tmp_path / ".claude" / "settings.json"
    document = json.loads(settings.read_text())
    document["env"]["ANTHROPIC_BASE_URL"] = "http://127.0.0.1:1"
    settings.write_text(json.dumps(document))
    broken = rosetta(daemon, tmp_path, "doctor", "--ascii")
    assert broken.returncode == 1, broken.stdout
    output = broken.stdout
    claude = next(line for line in output.splitlines() if "Claude Code config" in line)
    assert claude.lstrip().startswith("FAIL") and "does not point at this gateway" in claude, output
    assert "rosetta setup claude" in output.split(claude, 1)[1].splitlines()[1], output
    assert rosetta(daemon, tmp_path, "setup", "claude").returncode == 0
    assert "does not point" not in rosetta(daemon, tmp_path, "doctor", "--ascii").stdout
