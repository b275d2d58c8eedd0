"""TrialWatch: watch ClinicalTrials.gov records and report field-level changes."""

__version__ = "0.2.0"
