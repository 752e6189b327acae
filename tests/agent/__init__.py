"""Tests of the pi_mqtt_relay agent."""
