"""Offline sync over HTTP: push a device's actions, pull outcomes and state (the library's SyncServer inside)."""
