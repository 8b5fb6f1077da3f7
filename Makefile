# Blackout: a data center loses power; watch the cascade. `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BLACKOUT := $(VENV)/bin/blackout
PROFILE ?= naive
SCENARIO ?= dc-power-loss
USERS ?=
THINK ?=
SEED ?=
DC ?= dc-east
RUNTIME ?= local
# optional flags, passed only when set
RUN_FLAGS = $(if $(USERS),--users $(USERS)) $(if $(THINK),--think $(THINK)) $(if $(SEED),--seed $(SEED))
# every pinned version with its hashes: make install and CI install requirements.lock, the image
# requirements-runtime.lock (the runtime dependencies alone, at the same versions); `make lock` writes both
LOCK := requirements.lock
RUNTIME_LOCK := requirements-runtime.lock
# universal: one resolution with markers for every OS and machine, for Python 3.11 and later
UV_COMPILE = $(VENV)/bin/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command 'make lock' --quiet $(if $(UPGRADE),--upgrade)
# RUNTIME=netns: a network namespace per data center (Linux, root; faults in the kernel: link down, nftables, tc, NFQUEUE)
# RUNTIME=docker: containers of the image `make image` builds (it is built first; the layer cache makes that quick)
# RUNTIME=swarm: a Docker Swarm of three engines, each in a namespace of its own (docker/swarm-lab.sh, started
# first, with the image); the controller runs on the lab's manager machine, from where every node is reachable,
# and so does every command that calls it (make down/status/power-off/... RUNTIME=swarm)
IMAGE_FIRST = $(if $(filter docker swarm,$(RUNTIME)),image) $(if $(filter swarm,$(RUNTIME)),swarm-lab)
IN_LAB = $(if $(filter swarm,$(RUNTIME)),nsenter --net=/run/netns/$(SWARM_LAB_PREFIX)-ctl)
SWARM_LAB_PREFIX ?= bkswarm

.PHONY: help install lock lint outage scenarios panic test bench up down status power-off power-on profile validate clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## create the virtualenv and install Blackout (e.g. make install)

$(VENV)/.installed: pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit("Blackout needs Python 3.11+, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@# the lock carries hashes, so pip checks every file; the project itself on top, without resolving again
	$(PY) -m pip install --quiet --require-hashes -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $@

lock: install ## re-pin the dependencies after editing pyproject.toml; UPGRADE=1 takes the newest releases (e.g. make lock UPGRADE=1)
	$(UV_COMPILE) --extra test -o $(LOCK)
	@# the image's list is constrained by the full lock: the same version of every package in both
	$(UV_COMPILE) -c $(LOCK) -o $(RUNTIME_LOCK)

lint: install ## ruff (format and lint) and mypy over the code; any finding fails (e.g. make lint)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

outage: install $(IMAGE_FIRST) ## a scenario on local processes (or RUNTIME=netns|docker|swarm); exit 1 if its hypothesis deviated (e.g. make outage SCENARIO=partition PROFILE=resilient)
	@# exit 1 means "the hypothesis deviated": the expected lesson of the naive profile, not a broken demo
	$(IN_LAB) $(BLACKOUT) run $(SCENARIO) --profile profiles/$(PROFILE).yaml --runtime $(RUNTIME) $(RUN_FLAGS) || [ $$? -eq 1 ]

scenarios: install ## list the scenario library (e.g. make scenarios)
	$(BLACKOUT) scenarios

panic: ## remove every fault and restore all power on the running stack (e.g. make panic)
	$(IN_LAB) $(BLACKOUT) panic

test: install lint ## the linters, then the whole suite; every test tears its processes down (e.g. make test)
	$(PY) -m pytest

.PHONY: test-long
test-long: install ## the workshop's long proofs (every card's held round, the responder, two teams at once, the selftest; ~20 min): CI runs them after make test
	$(PY) -m pytest -m long

.PHONY: test-swarm
test-swarm: install image ## the Swarm lab's tests (three Docker engines; root and the docker lab; ~10 min): CI runs them after make test
	BLACKOUT_SWARM_TESTS=1 $(PY) -m pytest tests/docker/test_swarm_lab.py tests/chaos/runtime/test_swarm.py tests/chaos/runtime/test_swarm_stack.py

bench: install ## naive vs resilient under the same power loss, checked against the goals (e.g. make bench)
	$(PY) benchmarks/outage_contrast.py --scenario $(SCENARIO) $(RUN_FLAGS)

.PHONY: bench-all
bench-all: install ## every script in benchmarks/ in turn, each figure against its goal; exit 1 if any missed (e.g. make bench-all)
	@# A loop, not a list: a new benchmark is picked up by dropping its script into benchmarks/.
	@failed=""; for script in benchmarks/*.py; do \
		echo "== $$script"; $(PY) $$script || failed="$$failed $$script"; \
	done; \
	if [ -n "$$failed" ]; then echo "missed a goal or failed:$$failed"; exit 1; fi; echo "every benchmark met its goals"

up: install $(IMAGE_FIRST) ## start the stack in the background (e.g. make up PROFILE=naive RUNTIME=docker)
	$(IN_LAB) $(BLACKOUT) up --detach --profile profiles/$(PROFILE).yaml --runtime $(RUNTIME)

down: ## stop everything `make up` started; RUNTIME=swarm for a stack on the Swarm lab (e.g. make down)
	$(IN_LAB) $(BLACKOUT) down

status: ## show every instance (e.g. make status)
	$(IN_LAB) $(BLACKOUT) status

power-off: ## cut a data center's power (e.g. make power-off DC=dc-east)
	$(IN_LAB) $(BLACKOUT) power-off $(DC)

power-on: ## restore a data center's power (e.g. make power-on DC=dc-east)
	$(IN_LAB) $(BLACKOUT) power-on $(DC)

profile: ## switch the running stack's profile live (e.g. make profile PROFILE=resilient)
	$(IN_LAB) $(BLACKOUT) profile profiles/$(PROFILE).yaml

validate: install ## check every topology, profile and scenario file (e.g. make validate)
	$(BLACKOUT) validate topologies/*.yaml profiles/*.yaml chaos/scenarios/*.yaml

.PHONY: image compose
DOCKER ?= $(shell [ -x /usr/bin/docker ] && echo /usr/bin/docker || echo docker)
image: ## build the one image of every Python part (blackout:latest) for RUNTIME=docker and docker-compose (e.g. make image)
	$(DOCKER) build --network host -t blackout:latest .

.PHONY: swarm-lab swarm-lab-down
swarm-lab: image ## start the Swarm lab: three Docker engines in network namespaces, one Swarm (e.g. make swarm-lab)
	SWARM_LAB_PREFIX=$(SWARM_LAB_PREFIX) bash docker/swarm-lab.sh up

swarm-lab-down: ## remove the Swarm lab: engines, containers, namespaces, files (e.g. make swarm-lab-down)
	SWARM_LAB_PREFIX=$(SWARM_LAB_PREFIX) bash docker/swarm-lab.sh down

compose: install ## regenerate docker-compose.yml and docker/prometheus/ from the topology (e.g. make compose)
	$(BLACKOUT) compose

.PHONY: prometheus dashboards
prometheus: ## install Debian's Prometheus where possible (root + apt-get), for live dashboards (e.g. make prometheus)
	.ci/install-prometheus

dashboards: install ## regenerate grafana/dashboards/*.json from grafana/generate.py (e.g. make dashboards)
	$(PY) grafana/generate.py

clean: ## remove the virtualenv and every run directory (e.g. make clean)
	rm -rf $(VENV) runs
