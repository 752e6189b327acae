"""Tests of the integration's plain-Python rules and stores, without Home Assistant."""
