"""Fixtures shared by the cross-package tests (real processes over real loopback sockets)."""
