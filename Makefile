# rosettad: the two Quick start commands are `make run` and `make test`.
SWIFT ?= swift
BIN := .build/debug

.PHONY: run test build completions setup-build setup-test unit-test conformance-test bench clean

## Build and start rosettad in user mode with the default config (~/.config/rosetta/config.yaml).
run: setup-build
	$(SWIFT) build --product rosettad
	$(SWIFT) build --product rosetta
	$(BIN)/rosettad serve --user

## Install what is missing, build, and run the whole test suite (Swift unit tests, then live tests with real SDKs).
test: setup-test build unit-test conformance-test

setup-build:
	scripts/setup.sh build

setup-test:
	scripts/setup.sh test

build:
	$(SWIFT) build --build-tests
	$(MAKE) --no-print-directory completions

## Shell completions for rosetta and rosettad (bash, zsh, fish) from the argument parser, into completions/.
completions:
	$(SWIFT) build --product rosetta
	$(SWIFT) build --product rosettad
	mkdir -p completions
	for tool in rosetta rosettad; do \
		$(BIN)/$$tool --generate-completion-script bash > completions/$$tool.bash && \
		$(BIN)/$$tool --generate-completion-script zsh > completions/_$$tool && \
		$(BIN)/$$tool --generate-completion-script fish > completions/$$tool.fish || exit 1; \
	done

unit-test:
	$(SWIFT) test --skip-build

conformance-test:
	ROSETTAD_BIN=$(BIN)/rosettad ROSETTA_BIN=$(BIN)/rosetta .venv/bin/python -m pytest -q Tests/conformance

## Measure latency, throughput and CPU through rosettad against the direct upstream (release build).
bench: setup-build
	$(SWIFT) build -c release
	scripts/bench.sh

clean:
	rm -rf .build .venv
