"""``scripts/demo``: Home Assistant, a broker, the relay agent and the Razorpay stand-in."""
