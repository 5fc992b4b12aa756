"""Load runs with Locust: the same cases under load, with per-version statistics and CI gates.
"""
