"""Shared fixtures: the fake ClinicalTrials.gov API (`fake_api`) lives in tests/fakeapi.py."""

pytest_plugins = ["tests.fakeapi"]
