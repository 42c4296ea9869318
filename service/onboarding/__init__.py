"""Onboarding over HTTP: the wizard API, connection tests, progress tracking and firm-added steps."""
