"""Produces the transcripts in docs/clients/*.md: real runs of `rosetta setup` / `rosetta env` against a user-mode
rosettad whose providers are the conformance suite's fake upstreams.

    .venv/bin/python docs/clients/transcripts.py OUTPUT_DIR

Each client gets OUTPUT_DIR/<client>.txt, pasted into the ```console block of its page. The temporary home directory is shown as /home/alice and the random
port as it was; nothing else is edited.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "Tests" / "conformance"))

from fake_google import FakeGoogle  # noqa: E402
from fakes import FakeAnthropic, FakeOpenAI  # noqa: E402
from harness import Daemon, rosetta_binary  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[2] / "Tests" / "ClientSetupTests" / "Fixtures"

EXISTING = {
    "claude": (".claude/settings.json", "claude-settings.json"),
    "codex": (".codex/config.toml", "codex-config.toml"),
    "opencode": (".config/opencode/opencode.json", None),
    "aider": (".aider.conf.yml", "aider.conf.yml"),
    "gemini": (".gemini/settings.json", "gemini-settings.json"),
    "hermes": (".hermes/config.yaml", "hermes-config.yaml"),
}

# A call through the gateway made the way each client makes it, from the values its file (or env) holds.
# Each entry is one shell session: a list of commands (a backslash-newline continues a command).
CALLS = {
    "claude": [
        """base=$(jq -r .env.ANTHROPIC_BASE_URL ~/.claude/settings.json); key=$(sh -c "$(jq -r .apiKeyHelper ~/.claude/settings.json)")""",
        """curl -s "$base/v1/messages" -H "x-api-key: $key" -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \\
  -d '{"model":"claude-sonnet-4-6","max_tokens":64,"messages":[{"role":"user","content":"hello from Claude Code"}]}' | jq -c '{model, content}'""",
    ],
    "codex": [
        """base=$(python3 -c 'import tomllib, os; print(tomllib.load(open(os.path.expanduser("~/.codex/config.toml"), "rb"))["model_providers"]["rosetta"]["base_url"])')""",
        """key=$(rosetta token)   # what [model_providers.rosetta.auth] runs""",
        """curl -s "$base/responses" -H "authorization: Bearer $key" -H 'content-type: application/json' \\
  -d '{"model":"gpt-5","input":"hello from Codex","store":false}' | jq -c '{model, status, text: .output[0].content[0].text}'""",
    ],
    "opencode": [
        'eval "$(rosetta env opencode)"',
        """base=$(jq -r .provider.rosetta.options.baseURL ~/.config/opencode/opencode.json)""",
        """curl -s "$base/chat/completions" -H "authorization: Bearer $ROSETTA_API_KEY" -H 'content-type: application/json' \\
  -d '{"model":"claude-sonnet-4-6","messages":[{"role":"user","content":"hello from OpenCode"}]}' | jq -c '{model, reply: .choices[0].message.content}'""",
    ],
    "aider": [
        'eval "$(rosetta env aider)"',
        """curl -s "$OPENAI_API_BASE/chat/completions" -H "authorization: Bearer $OPENAI_API_KEY" -H 'content-type: application/json' \\
  -d '{"model":"claude-sonnet-4-6","messages":[{"role":"user","content":"hello from Aider"}]}' | jq -c '{model, reply: .choices[0].message.content}'""",
    ],
    "gemini": [
        'eval "$(rosetta env gemini)"',
        """curl -s "$GOOGLE_GEMINI_BASE_URL/v1beta/models/$GEMINI_MODEL:generateContent" -H "x-goog-api-key: $GEMINI_API_KEY" \\
  -H 'content-type: application/json' -d '{"contents":[{"role":"user","parts":[{"text":"hello from Gemini CLI"}]}]}' \\
  | jq -c '{modelVersion, text: .candidates[0].content.parts[0].text}'""",
    ],
    "hermes": [
        'eval "$(rosetta env hermes)"',
        """curl -s "$OPENAI_BASE_URL/chat/completions" -H "authorization: Bearer $OPENAI_API_KEY" -H 'content-type: application/json' \\
  -d '{"model":"claude-sonnet-4-6","messages":[{"role":"user","content":"hello from Hermes"}]}' | jq -c '{model, reply: .choices[0].message.content}'""",
    ],
}

SDK_SESSIONS = [
    ["""rosetta env openai | sed 's/API_KEY=.*/API_KEY=.../'"""],
    ['eval "$(rosetta env openai)"',
     """python3 -c 'import openai; r = openai.OpenAI().chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "hi from the OpenAI SDK"}]); print(r.choices[0].message.content)'"""],
    ['eval "$(rosetta env anthropic)"',
     """python3 -c 'import anthropic; m = anthropic.Anthropic().messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": "hi from the Anthropic SDK"}]); print(m.content[0].text)'"""],
    ['eval "$(rosetta env google-genai)"',
     """python3 -c 'from google import genai; client = genai.Client(); print(client.models.generate_content(model="gemini-2.5-pro", contents="hi from google-genai").text)'"""],
]


def main() -> None:
    output = Path(sys.argv[1])
    output.mkdir(parents=True, exist_ok=True)
    with FakeOpenAI(api_key="k-openai") as openai_fake, FakeAnthropic(api_key="k-anthropic") as anthropic_fake, \
            FakeGoogle(api_key="k-google") as google_fake:
        config = {
            "providers": {
                "openai": {"type": "openai_chat", "base_url": f"{openai_fake.url}/v1", "api_key": "k-openai"},
                "anthropic": {"type": "anthropic", "base_url": anthropic_fake.url, "api_key": "k-anthropic"},
                "gemini": {"type": "google", "base_url": f"{google_fake.url}/v1beta", "api_key": "k-google"},
            },
            "models": {
                "claude-sonnet-4-6": {"provider": "anthropic", "upstream_model": "fake-claude"},
                "claude-haiku-4-5": {"provider": "anthropic", "upstream_model": "fake-claude"},
                "gpt-5": {"provider": "openai", "upstream_model": "fake-gpt"},
                "gemini-2.5-pro": {"provider": "gemini", "upstream_model": "fake-gemini"},
            },
        }
        daemon = Daemon(config)
        try:
            daemon.start()
            bin_dir = daemon.root / "bin"
            bin_dir.mkdir()
            (bin_dir / "rosetta").symlink_to(rosetta_binary())
            env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "GEMINI_", "GOOGLE_", "XDG_"))}
            env.update(HOME=str(daemon.home), PATH=f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin", NO_PROXY="")

            def run(sessions: list[list[str]]) -> str:
                """Runs each session's commands in one bash; shows them with `$ ` (and `> ` for continuations)."""
                transcript = ""
                for commands in sessions:
                    result = subprocess.run(["bash", "-c", "\n".join(commands)], capture_output=True, text=True, env=env,
                                            cwd=daemon.home)
                    for command in commands:
                        transcript += "\n".join(("$ " if i == 0 else "> ") + part for i, part in enumerate(command.split("\n"))) + "\n"
                    transcript += result.stdout + result.stderr
                return transcript.replace(str(daemon.home), "/home/alice")

            for client, (relative, fixture) in EXISTING.items():
                path = daemon.home / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                if fixture:
                    path.write_text((FIXTURES / fixture).read_text())
                text = run([[f"rosetta setup {client} --dry-run"], [f"rosetta setup {client}"], [f"cat ~/{relative}"],
                            CALLS[client], [f"rosetta setup {client}"], [f"rosetta setup --undo {client}"]])
                (output / f"{client}.txt").write_text(text)
            (output / "sdk.txt").write_text(run(SDK_SESSIONS))
        finally:
            daemon.cleanup()


if __name__ == "__main__":
    main()
