"""The registry: ClinicalTrials.gov, seen from here.

`client` speaks HTTP (httpx in, `watcher.errors` out), `ratelimit` keeps us polite, `responses`
checks every answer, `poll` decides per cycle which trials changed at the least cost, and
`record_history` reads past versions. A second registry would be a sibling package.
"""
