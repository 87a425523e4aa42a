"""Hostile-input campaigns that run without Django: ``python -m tests.hostile.taskfiles``."""
