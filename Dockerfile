# One image for every Python part of Blackout: the five services, the chaos controller and locust.
# Build (host networking: only loopback traffic is allowed on our machines):
#   docker build --network host -t blackout:latest .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app

WORKDIR /app

# Dependencies in their own layer, from the runtime lock (`make lock`: the versions CI tested, with their
# hashes): rebuilt only when the lock changes, not on every code or pyproject.toml edit.
COPY requirements-runtime.lock /tmp/requirements.lock
RUN pip install --require-hashes -r /tmp/requirements.lock && rm -rf /tmp/requirements.lock /root/.cache

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
