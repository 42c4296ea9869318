"""Liveness, readiness and problem-type documentation."""
