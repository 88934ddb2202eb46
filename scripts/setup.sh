#!/usr/bin/env bash
# Installs what building and testing rosettad needs on Debian/Ubuntu, skipping what is already there.
#   scripts/setup.sh build   system libraries for the build (libcurl, PAM, systemd headers, pkg-config)
#   scripts/setup.sh test    the above, plus openssh (server, client), openssl, zsh and fish (completion checks)
#                            and a Python venv with the official client SDKs
set -euo pipefail
cd "$(dirname "$0")/.."

want=${1:-build}
packages=(libcurl4-openssl-dev libpam0g-dev libsystemd-dev pkg-config)
if [[ $want == test ]]; then
    packages+=(openssh-server openssh-client openssl python3-venv systemd passwd util-linux procps zsh fish)
fi

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    if [[ $(id -u) -eq 0 ]]; then sudo=(); else sudo=(sudo); fi
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ $want == test ]]; then
    if [[ ! -x .venv/bin/python ]]; then
        echo "setup: creating .venv"
        python3 -m venv .venv
    fi
    if ! .venv/bin/python -c "import openai, anthropic, google.genai, httpx, pytest, prometheus_client" 2>/dev/null; then
        echo "setup: installing the Python test clients into .venv"
        .venv/bin/python -m pip install -q --upgrade pip
        .venv/bin/python -m pip install -q -r Tests/conformance/requirements.txt
    fi
fi
