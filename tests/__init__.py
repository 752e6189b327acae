"""Tests of qr_charging."""
