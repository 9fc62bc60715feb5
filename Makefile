# The two set-up commands of the README: `make run` and `make test`.
# Each creates .venv when needed and installs what it uses, on a fresh Debian machine too.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench clean azurite sshd tmux ssh-client

# Microsoft's Azure Storage emulator; the shared append-blob suite runs against it too.
AZURITE_BLOB := .cache/azurite/node_modules/.bin/azurite-blob

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { \
	  echo "python3 -m venv failed; installing python3-venv"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv && \
	  rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.app: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

run: $(VENV)/.app
	$(BIN)/fleetrun

lint: $(VENV)/.test
	$(BIN)/ruff check core tui tests bench
	$(BIN)/mypy

$(AZURITE_BLOB):
	command -v npm >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }
	npm install --no-audit --no-fund --prefix .cache/azurite azurite

azurite: $(AZURITE_BLOB)

# OpenSSH's server: the SSH backend's contract suite logs in to a private sshd on loopback;
# sudo: the --run-as (become) tests run sudo on it, as Ansible's become would.
sshd:
	test -x /usr/sbin/sshd || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server; }
	command -v sudo >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sudo; }

# tmux drives the installed app in the end-to-end test, as a person at a terminal would.
tmux:
	command -v tmux >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux; }

test: $(VENV)/.test lint azurite sshd tmux
	$(BIN)/pytest -n 3 --dist loadfile

# bench/ssh starts the loopback sshd the tests use too (bench/loopback_sshd.py) and runs
# parallel-ssh and Ansible beside fleetrun; Ansible drives OpenSSH's ssh client.
$(VENV)/.bench: $(VENV)/.test
	$(BIN)/python -m pip install -q parallel-ssh ansible-core
	touch $@

ssh-client:
	command -v ssh >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-client; }

bench: $(VENV)/.bench sshd ssh-client
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
