"""Runtimes that run a topology and cut its power: local processes (default); Docker Compose later."""

from chaos.runtime.base import Runtime, RuntimeError_

__all__ = ["Runtime", "RuntimeError_"]
