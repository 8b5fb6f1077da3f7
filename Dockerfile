# One image for every Python part of Blackout: the five services, the chaos controller and locust.
# Build (host networking: only loopback traffic is allowed on our machines):
#   docker build --network host -t blackout:latest .
# Stage 1: the dependency list alone, out of pyproject.toml. Stage 2 copies only that list, so an edit to
# pyproject.toml that leaves the dependencies alone (version, pytest options, package data) keeps the cache.
FROM python:3.11-slim AS requirements
COPY pyproject.toml /tmp/
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('/tmp/pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app

WORKDIR /app

# Dependencies in their own layer: rebuilt only when the list changes, not on every code edit.
COPY --from=requirements /tmp/requirements.txt /tmp/requirements.txt
RUN pip install -r /tmp/requirements.txt && rm -rf /tmp/requirements.txt /root/.cache

# The code last (the layer that changes most). No `pip install .`: PYTHONPATH=/app finds the packages.
COPY services /app/services
COPY chaos /app/chaos
COPY loadtest /app/loadtest
COPY profiles /app/profiles
COPY topologies /app/topologies
# Bytecode compiled once here: every power-on starts fresh Python processes (PYTHONDONTWRITEBYTECODE keeps
# containers from writing it at run time).
RUN python -m compileall -q /app

# Not root; /data holds the SQLite files (a volume under Compose; the run directory under the Docker runtime,
# which runs containers as the invoking user instead).
RUN useradd --uid 10001 --no-create-home --home-dir /app blackout && mkdir -p /data && chown blackout /data
USER blackout

# Each instance is configured by BLACKOUT_* variables (see services/common/settings.py). The entrypoint takes
# its listening socket from the Docker runtime when one hands it over, else binds BLACKOUT_PORT itself.
ENTRYPOINT ["python", "-m", "chaos.runtime.container_entry"]
